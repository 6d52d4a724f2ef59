/**
 * The part of Node's EventEmitter the client uses, for the browser build
 * (esbuild maps `node:events` here): on/once/off, emit, listenerCount.
 * As in Node, an `error` event without a listener throws.
 */
import { kiteError } from '../errors.js'

type Listener = (...args: never[]) => void

export class EventEmitter {
  private readonly listenersByName = new Map<string | symbol, Listener[]>()

  on(name: string | symbol, fn: Listener): this {
    const list = this.listenersByName.get(name)
    if (list === undefined) this.listenersByName.set(name, [fn])
    else list.push(fn)
    return this
  }

  addListener(name: string | symbol, fn: Listener): this {
    return this.on(name, fn)
  }

  once(name: string | symbol, fn: Listener): this {
    const wrapper = (...args: never[]): void => {
      this.off(name, wrapper)
      fn(...args)
    }
    ;(wrapper as { listener?: Listener }).listener = fn
    return this.on(name, wrapper)
  }

  off(name: string | symbol, fn: Listener): this {
    const list = this.listenersByName.get(name)
    if (list === undefined) return this
    const i = list.findIndex((l) => l === fn || (l as { listener?: Listener }).listener === fn)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.listenersByName.delete(name)
    return this
  }

  removeListener(name: string | symbol, fn: Listener): this {
    return this.off(name, fn)
  }

  removeAllListeners(name?: string | symbol): this {
    if (name === undefined) this.listenersByName.clear()
    else this.listenersByName.delete(name)
    return this
  }

  listenerCount(name: string | symbol): number {
    return this.listenersByName.get(name)?.length ?? 0
  }

  emit(name: string | symbol, ...args: unknown[]): boolean {
    const list = this.listenersByName.get(name)
    if (list === undefined) {
      if (name === 'error') throw args[0] instanceof Error ? args[0] : kiteError('KITE_ERR_UNHANDLED_ERROR_EVENT', String(args[0]))
      return false
    }
    for (const fn of [...list]) (fn as (...a: unknown[]) => void)(...args)
    return true
  }
}
