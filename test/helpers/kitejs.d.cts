/** Types for the kite.js test helper (kite.js ships no types). */
export interface KitejsKite {
  tell(method: string, args?: unknown): Promise<unknown>
  on(event: string, fn: (...args: unknown[]) => void): void
  once(event: string, fn: (...args: unknown[]) => void): void
  disconnect(): void
  readyState: number
}
export interface KitejsServer {
  url: string
  port: number
  close(): Promise<void>
}
export function startKiteServer(o: { transport?: 'ws' | 'sockjs'; prefix?: string; api: Record<string, unknown>; name?: string }): Promise<KitejsServer>
export function connectKite(url: string, o?: Record<string, unknown>): KitejsKite
export function closeKite(kite: KitejsKite): Promise<void>
