// A consumer of the package's types, checked with `tsc --strict --noEmit` (types.test.mjs):
// every option and result field must be usable as documented.
import { linkVirtualStore, type LinkOptions, type LinkResult, type LogEvent } from '../../index.js'

const controller = new AbortController()
const events: LogEvent[] = []

const options: LinkOptions = {
  dir: '/tmp/project',
  storeDir: '/tmp/store',
  virtualStoreDir: '/tmp/project/node_modules/.pnpm',
  registries: { default: 'http://127.0.0.1:4873/', '@scope': 'http://127.0.0.1:4874/' },
  authHeaderByUri: { '//127.0.0.1:4873/': 'Bearer token' },
  packageImportMethod: 'hardlink',
  networkConcurrency: 16,
  fetchRetries: 2,
  fetchRetryFactor: 10,
  fetchRetryMintimeout: 10_000,
  fetchRetryMaxtimeout: 60_000,
  fetchTimeout: 60_000,
  offline: false,
  include: { dependencies: true, devDependencies: false, optionalDependencies: true },
  supportedArchitectures: { os: ['current', 'darwin'], cpu: ['x64'], libc: ['glibc'] },
  virtualStoreDirMaxLength: 120,
  verifyStoreIntegrity: true,
  strictStorePkgContentCheck: true,
  hoistPattern: ['*'],
  publicHoistPattern: [],
  shamefullyHoist: false,
  allowBuilds: { esbuild: true },
  dangerouslyAllowAllBuilds: false,
  ignoreScripts: true,
  onProgress: (event) => {
    events.push(event)
    if (event.name === 'pnpm:progress' && event.status === 'imported') console.log(event.to)
  },
  signal: controller.signal,
}

async function main (): Promise<void> {
  const result: LinkResult = await linkVirtualStore('/tmp/project/pnpm-lock.yaml', options)
  const counts: number[] = [result.added, result.fetched, result.reused, result.bytesDownloaded, result.filesImported]
  const paths: string[] = [result.storeDir, result.virtualStoreDir, ...result.skipped, ...result.depsRequiringBuild]
  const method: string | undefined = result.importMethod
  const total: number = result.timings.totalMs + result.timings.prepareMs + result.timings.storeLookupMs +
    result.timings.fetchAndImportMs + result.timings.linkImportersMs
  console.log(counts, paths, method, total)
  // A lockfile object and no options at all are accepted too.
  await linkVirtualStore({ lockfileVersion: '9.0', importers: {} })
  try {
    await linkVirtualStore('/nowhere')
  } catch (err) {
    const { code, hint } = err as Error & { code: string, hint: string }
    console.log(code, hint)
  }
}

void main()
