import { kiteError } from '../../lib/errors.js'
import { readFile, statfs } from 'node:fs/promises'
import os from 'node:os'
import { parse as parsePath } from 'node:path'

/** The `kite.systemInfo` result, with Go's field names and units (spec §11). */
export interface SystemInfo {
  /** Always `RUNNING` (kept for old clients). */
  state: 'RUNNING'
  /** Used space on `/` (Windows: the current volume), in KiB. */
  diskUsage: number
  /** Total space on `/` (Windows: the current volume), in KiB. */
  diskTotal: number
  /** Memory in use, in bytes. */
  memoryUsage: number
  /** Total physical memory, in bytes. */
  totalMemoryLimit: number
  /** The current user's home directory, `""` on error. */
  homeDir: string
  /** Go `runtime.GOOS`: `linux`, `darwin`, `windows`, … */
  uname: string
}

/** The statfs fields used, as BigInts (`statfs(path, { bigint: true })`). */
export interface StatfsLike {
  bsize: bigint
  blocks: bigint
  bfree: bigint
  bavail: bigint
}

/** What `collectSystemInfo` reads from the machine; replaceable in tests. */
export interface SystemProbes {
  platform: NodeJS.Platform
  statfs: (path: string) => Promise<StatfsLike>
  readFile: (path: string) => Promise<string>
  totalmem: () => number
  freemem: () => number
  homedir: () => string
  cwd: () => string
}

export const defaultProbes: SystemProbes = {
  platform: process.platform,
  statfs: (path) => statfs(path, { bigint: true }),
  readFile: (path) => readFile(path, 'utf8'),
  totalmem: () => os.totalmem(),
  freemem: () => os.freemem(),
  homedir: () => os.homedir(),
  cwd: () => process.cwd(),
}

const GOOS: Partial<Record<NodeJS.Platform, string>> = { win32: 'windows', cygwin: 'windows', sunos: 'solaris' }

/** Node's `process.platform` under Go's `GOOS` name (`win32` → `windows`, `sunos` → `solaris`). */
export function goos(platform: NodeJS.Platform = process.platform): string {
  return GOOS[platform] ?? platform
}

/**
 * Disk figures in KiB with Go's integer maths: total = f_blocks × (bsize/512) / 2,
 * used = total − f_bfree × (bsize/512) / 2. On Windows (as Go), used counts the
 * space not available to the caller: (total − bavail) bytes / 1024.
 */
export function diskFromStatfs(s: StatfsLike, windows = false): { diskTotal: number; diskUsage: number } {
  if (windows) {
    const total = s.blocks * s.bsize
    return { diskTotal: Number(total / 1024n), diskUsage: Number((total - s.bavail * s.bsize) / 1024n) }
  }
  const sectors = s.bsize / 512n
  const total = (s.blocks * sectors) / 2n
  return { diskTotal: Number(total), diskUsage: Number(total - (s.bfree * sectors) / 2n) }
}

/** Linux memory from `/proc/meminfo` text: usage = (MemTotal − MemFree − Buffers − Cached) × 1024 bytes. */
export function memoryFromMeminfo(text: string): { memoryUsage: number; totalMemoryLimit: number } {
  const kib = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line)
    if (m !== null) kib.set(m[1]!, Number(m[2]))
  }
  const field = (name: string, required: boolean): number => {
    const v = kib.get(name)
    if (v === undefined) {
      if (required) throw kiteError('KITE_ERR_SYSTEMINFO_MEMINFO', name)
      return 0
    }
    return v
  }
  const total = field('MemTotal', true)
  const used = total - field('MemFree', true) - field('Buffers', false) - field('Cached', false)
  return { memoryUsage: Math.max(0, used) * 1024, totalMemoryLimit: total * 1024 }
}

/** Gathers the `kite.systemInfo` object. Rejects when statfs or /proc/meminfo fails (Go answers those as errors). */
export async function collectSystemInfo(probes: SystemProbes = defaultProbes): Promise<SystemInfo> {
  const windows = probes.platform === 'win32' || probes.platform === 'cygwin'
  const diskPath = windows ? parsePath(probes.cwd()).root : '/'
  const [disk, memory] = await Promise.all([
    probes.statfs(diskPath).then((s) => diskFromStatfs(s, windows)),
    probes.platform === 'linux'
      ? probes.readFile('/proc/meminfo').then(memoryFromMeminfo)
      : Promise.resolve().then(() => {
          const total = probes.totalmem()
          return { memoryUsage: Math.max(0, total - probes.freemem()), totalMemoryLimit: total }
        }),
  ])
  let homeDir = ''
  try {
    homeDir = probes.homedir()
  } catch {
    homeDir = ''
  }
  return {
    state: 'RUNNING',
    diskUsage: disk.diskUsage,
    diskTotal: disk.diskTotal,
    memoryUsage: memory.memoryUsage,
    totalMemoryLimit: memory.totalMemoryLimit,
    homeDir,
    uname: goos(probes.platform),
  }
}
