/**
 * `npm start`: the main job on this machine. Until the cluster launcher lands this trains the
 * default model (mlp, 2 epochs) in one process, prints the test accuracy and where the model went.
 * Extra flags are passed to `npm run train`.
 */
import { main } from './train.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
