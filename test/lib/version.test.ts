import t from 'tap'
import { compareVersions, comparePrereleases, parseConstraint } from '../../lib/protocol/version.js'

// hashicorp/go-version's TestComparePreReleases table, plus the case of the issue.
const prereleases: [string, string, number][] = [
  ['1.2-beta.2', '1.2-beta.2', 0],
  ['1.2-beta.1', '1.2-beta.2', -1],
  ['1.2-beta.2', '1.2-beta.11', -1],
  ['3.2-alpha.1', '3.2-alpha', 1],
  ['1.2-beta.2', '1.2-beta.1', 1],
  ['1.2-beta.11', '1.2-beta.2', 1],
  ['1.2-beta', '1.2-beta.3', -1],
  ['1.2-alpha', '1.2-beta.3', -1],
  ['1.2-beta', '1.2-alpha.3', 1],
  ['3.0-alpha.3', '3.0-rc.1', -1],
  ['3.0-alpha3', '3.0-rc1', -1],
  ['3.0-alpha.1', '3.0-alpha.beta', -1],
  ['5.4-alpha', '5.4-alpha.beta', 1],
  ['v1.2-beta.2', 'v1.2-beta.2', 0],
  ['v1.2-beta.1', 'v1.2-beta.2', -1],
  ['v3.2-alpha.1', 'v3.2-alpha', 1],
  ['v3.2-rc.1-1-g123', 'v3.2-rc.2', 1],
  ['1.0.0-rc.9', '1.0.0-rc.10', -1],
  ['1.0.0-rc.10', '1.0.0-rc.9', 1],
]

t.test('prereleases compare as go-version does', async (t) => {
  for (const [a, b, want] of prereleases) {
    t.equal(compareVersions(a, b), want, `${a} vs ${b}`)
    t.equal(compareVersions(b, a), -want || 0, `${b} vs ${a}`)
  }
  t.equal(comparePrereleases('rc.9', 'rc.10'), -1)
})

// hashicorp/go-version's TestVersionCompare table (segments and prerelease against release).
const versions: [string, string, number][] = [
  ['1.2.3', '1.4.5', -1],
  ['1.2-beta', '1.2-beta', 0],
  ['1.2', '1.1.4', 1],
  ['1.2', '1.2-beta', 1],
  ['1.2+foo', '1.2+beta', 0],
  ['v1.2', 'v1.2-beta', 1],
  ['v1.2+foo', 'v1.2+beta', 0],
  ['v1.2.3.4', 'v1.2.3.4', 0],
  ['v1.2.0.0', 'v1.2', 0],
  ['v1.2.0.0.1', 'v1.2', 1],
  ['v1.2', 'v1.2.0.0', 0],
  ['v1.2', 'v1.2.0.0.1', -1],
  ['v1.2.0.0', 'v1.2.0.0.1', -1],
  ['v1.2.3.0', 'v1.2.3.4', -1],
  ['1.7rc2', '1.7rc1', 1],
  ['1.7rc2', '1.7', -1],
  ['1.2.0', '1.2.0-X-1.2.0+metadata~dist', 1],
]

t.test('versions compare as go-version does', async (t) => {
  for (const [a, b, want] of versions) t.equal(compareVersions(a, b), want, `${a} vs ${b}`)
})

// From go-version's TestConstraintCheck: prereleases only match constraints that name a prerelease of the same base.
const constraints: [string, string, boolean][] = [
  ['>= 1.0.0-rc.9', '1.0.0-rc.10', true],
  ['< 1.0.0-rc.10', '1.0.0-rc.9', true],
  ['> 1.0.0-rc.10', '1.0.0-rc.9', false],
  ['>= 1.0, < 1.4', '1.2-beta', false],
  ['>= 1.0.0', '1.0.1-beta', false],
  ['> 1.0-beta', '1.0', true],
  ['>= 1.0-beta.1', '1.0-beta.2', true],
  ['>= 1.0-beta.1', '1.1-beta.2', false],
  ['= 1.0-beta', '1.0-beta', true],
  ['!= 1.0-beta', '1.0-beta.1', true],
  ['~> 1.0', '1.1', true],
  ['~> 1.0', '1.1-beta', false],
  ['~> 1.0-beta', '1.0-beta.2', true],
  ['~> 1.0-beta', '1.0', false],
  ['~> 1.2.3', '1.2.4', true],
  ['~> 1.2.3', '1.3', false],
  ['~> 1.2', '2.0', false],
]

t.test('constraints treat prereleases as go-version does', async (t) => {
  for (const [c, v, want] of constraints) t.equal(parseConstraint(c)(v), want, `${v} ${want ? 'matches' : 'does not match'} ${c}`)
})
