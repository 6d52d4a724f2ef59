// `Tap.Test`, the type of a tap test, for helpers' parameters (one declaration for all test files).
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap {
    type Test = import('tap').Test
  }
}
export {}
