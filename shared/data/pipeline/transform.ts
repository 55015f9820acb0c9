import { Prng } from '../../random/prng.js';

/**
 * Map functions cannot be sent to worker threads, so a transform is a named export of a module:
 * workers import `moduleUrl` and look up `exportName`. Options must be plain JSON for the same reason.
 *
 *   export const blur = defineTransform(import.meta.url, 'blur', (image: RawImage, o: { radius: number }) => …);
 *   dataset.map(blur.with({ radius: 2 }), { parallel: 2 })
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };

export interface TransformContext {
  /** Seeded from (map seed, stage, epoch, sample): the same augmentation whichever thread runs it. */
  readonly random: Prng;
  /** Index of the sample in its source (stable across shards, shuffles and epochs). */
  sampleIndex: number;
  epoch: number;
}

/** Must be pure apart from `ctx.random`, must not mutate its input, and must return data it owns. */
export type TransformFn<In, Out, Options> = (input: In, options: Options, ctx: TransformContext) => Out;

const TRANSFORM_TAG = 'ringpipe.transform';

export interface Transform<In, Out, Options extends JsonValue> {
  readonly tag: typeof TRANSFORM_TAG;
  readonly moduleUrl: string;
  readonly exportName: string;
  readonly apply: TransformFn<In, Out, Options>;
  /** A step for `Dataset.map`, binding these options. */
  with(options: Options): TransformStep<In, Out>;
}

/** A transform with its options bound: what `Dataset.map` takes. Phantom types keep `map` typed. */
export interface TransformStep<In, Out> {
  readonly transform: Transform<In, Out, JsonValue>;
  readonly options: JsonValue;
  /** Never set: carries the element types for the compiler. */
  readonly __types?: (input: In) => Out;
}

export function defineTransform<In, Out, Options extends JsonValue = Record<string, never>>(
  moduleUrl: string,
  exportName: string,
  apply: TransformFn<In, Out, Options>,
): Transform<In, Out, Options> {
  const transform: Transform<In, Out, Options> = {
    tag: TRANSFORM_TAG,
    moduleUrl,
    exportName,
    apply,
    with(options: Options): TransformStep<In, Out> {
      assertJson(options, `options of transform '${exportName}'`);
      return { transform: transform as unknown as Transform<In, Out, JsonValue>, options };
    },
  };
  return transform;
}

export function isTransform(value: unknown): value is Transform<unknown, unknown, JsonValue> {
  return typeof value === 'object' && value !== null && (value as { tag?: unknown }).tag === TRANSFORM_TAG;
}

/** Loads a transform by module and export name, the way a worker thread does. */
export async function importTransform(moduleUrl: string, exportName: string): Promise<Transform<unknown, unknown, JsonValue>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(moduleUrl)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load the transform module ${moduleUrl} in a data worker thread: ${err instanceof Error ? err.message : String(err)}. Define transforms in a module that can be imported on its own (not in a test or script that runs on import).`);
  }
  const found = module[exportName];
  if (!isTransform(found) || found.exportName !== exportName) {
    throw new Error(`${moduleUrl} has no transform exported as '${exportName}': export it as \`export const ${exportName} = defineTransform(import.meta.url, '${exportName}', fn)\``);
  }
  return found;
}

function assertJson(value: unknown, what: string): void {
  const roundTrip = JSON.stringify(value);
  if (roundTrip === undefined || JSON.stringify(JSON.parse(roundTrip)) !== roundTrip) {
    throw new Error(`${what} must be plain JSON (they are sent to worker threads), got ${String(value)}`);
  }
}

/**
 * A well-mixed 32-bit seed for one sample's randomness. Depends only on its arguments, so an
 * augmentation is the same inline or in any worker, on any peer, before or after a resume.
 */
export function sampleSeed(seed: number, stage: number, epoch: number, sampleIndex: number): number {
  // Unrolled over (stage, epoch, sampleIndex): it runs for every sample, and a loop over an array
  // literal allocated one array per call.
  return mixSeed(mixSeed(mixSeed(0x9e3779b9 ^ seed, stage), epoch), sampleIndex) >>> 0;
}

function mixSeed(h: number, v: number): number {
  h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A sample's context. Its generator is made on first use: most transforms (scaling, decoding) draw
 * no random numbers, and building one for every sample and stage (a typed array for its state) was
 * wasted work and garbage. Made whenever, it starts from the same seed.
 */
class SampleContext implements TransformContext {
  private generator: Prng | undefined;

  constructor(
    private readonly seed: number,
    private readonly stage: number,
    readonly epoch: number,
    readonly sampleIndex: number,
  ) {}

  get random(): Prng {
    this.generator ??= new Prng(sampleSeed(this.seed, this.stage, this.epoch, this.sampleIndex));
    return this.generator;
  }
}

export function contextFor(seed: number, stage: number, epoch: number, sampleIndex: number): TransformContext {
  return new SampleContext(seed, stage, epoch, sampleIndex);
}
