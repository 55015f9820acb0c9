/**
 * The Dockerfile as stages, for the deploy tests (parsed with dockerfile-ast, the parser of the
 * Docker language server): each stage's name, base and instructions with their flags.
 */
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export interface StageInstruction {
  keyword: string;
  /** The instruction's text after the keyword and its flags. */
  text: string;
  /** `--from=app` → { from: 'app' }. */
  flags: Record<string, string | null>;
  /** The exec form (JSON array) of RUN/CMD/ENTRYPOINT, when written that way. */
  exec: string[] | undefined;
}

export interface Stage {
  name: string;
  from: string;
  instructions: StageInstruction[];
}

export interface ParsedDockerfile {
  args: Record<string, string | undefined>;
  stages: Stage[];
}

export function readDockerfile(file: string): ParsedDockerfile {
  const dockerfile = DockerfileParser.parse(readFileSync(file, 'utf8'));
  // Only the ARGs before the first FROM may be used in a FROM line.
  const args = Object.fromEntries(
    dockerfile.getInitialARGs().map((arg) => {
      const property = arg.getProperty();
      return [property?.getName() ?? '', property?.getValue() ?? undefined];
    }),
  );
  const stages = dockerfile.getFROMs().map((from, index): Stage => ({
    name: from.getBuildStage() ?? String(index),
    from: from.getImage() ?? '',
    instructions: [],
  }));
  let current = -1;
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      current++;
      continue;
    }
    if (current >= 0) stages[current]!.instructions.push(describe(instruction));
  }
  return { args, stages };
}

function describe(instruction: Instruction): StageInstruction {
  const withFlags = instruction as unknown as { getFlags?(): { getName(): string; getValue(): string | null }[] };
  const withJson = instruction as unknown as { getJSONStrings?(): { getJSONValue(): string }[] };
  const flags = Object.fromEntries((withFlags.getFlags?.() ?? []).map((flag) => [flag.getName(), flag.getValue()]));
  const json = withJson.getJSONStrings?.() ?? [];
  const content = instruction.getArgumentsContent() ?? '';
  return {
    keyword: instruction.getKeyword(),
    text: content.replace(/^(--\S+\s+)+/, ''),
    flags,
    exec: json.length > 0 ? json.map((part) => part.getJSONValue()) : undefined,
  };
}

/** `${NAME}` references resolved with the ARG defaults (what a plain `docker build` uses). */
export function withArgs(text: string, args: Record<string, string | undefined>): string {
  return text.replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? `\${${name}}`);
}
