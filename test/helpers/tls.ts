import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A self-signed CA and a server certificate it signed for 127.0.0.1 and localhost, made with openssl. */
export interface TestCertificates {
  dir: string
  caFile: string
  ca: string
  key: string
  cert: string
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'kite-tls-'))
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  }
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=fastify-kite test CA'])
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n')
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext'])
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8')
  return { dir, caFile: join(dir, 'ca.pem'), ca: read('ca.pem'), key: read('server.key'), cert: read('server.pem') }
}

/**
 * Node reads NODE_EXTRA_CA_CERTS only at start: a test file that needs its
 * clients (ws, fetch, child processes) to trust the test CA calls this first.
 * The first run makes the certificates and runs the same file again with the
 * CA trusted (its TAP output passed through), then exits with its status.
 * Returns the certificates in the re-run.
 */
export function withTrustedTestCA(): TestCertificates {
  const dir = process.env.KITE_TEST_TLS_DIR
  if (dir !== undefined && process.env.NODE_EXTRA_CA_CERTS === join(dir, 'ca.pem')) {
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8')
    return { dir, caFile: join(dir, 'ca.pem'), ca: read('ca.pem'), key: read('server.key'), cert: read('server.pem') }
  }
  const certs = makeCertificates()
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile, KITE_TEST_TLS_DIR: certs.dir },
  })
  rmSync(certs.dir, { recursive: true, force: true })
  process.exit(result.status ?? 1)
}
