import { runObserveBench } from './dist/bench/observe.js'
for (const l of await runObserveBench([32], Number(process.argv[2] ?? 10))) console.log(l)
