import { z } from 'zod';

/** How an option's text form (environment variable or flag) is read. */
export type OptionKind = 'string' | 'int' | 'number' | 'bool' | 'list' | 'enum';

/** How an option's value is shown when the configuration is printed or logged. */
export type SecretKind = 'none' | 'value' | 'url';

/** One configuration option, declared once: type, default, unit and a doc line. */
export interface OptionSpec<T> {
  readonly kind: OptionKind;
  /** Validates a value of the option (after text forms were converted). */
  readonly schema: z.ZodType<T>;
  /** The default, or a function computing it (e.g. the machine's host name). */
  readonly default: T | (() => T);
  /** Unit of a numeric option, shown in docs: `ms`, `bytes`, `ratio`, `count`. */
  readonly unit?: string;
  /** One line saying what the option does. */
  readonly doc: string;
  /** `value`: never print it; `url`: print it with its credentials removed. */
  readonly secret: SecretKind;
  /** Allowed values of an `enum` option. */
  readonly values?: readonly string[];
}

/** A tree of option specs; leaves are {@link OptionSpec}s. */
export interface SpecTree {
  readonly [key: string]: OptionSpec<unknown> | SpecTree;
}

/** The value type described by a spec tree. */
export type ValueOf<S> = S extends OptionSpec<infer T>
  ? T
  : { readonly [K in keyof S]: ValueOf<S[K]> };

interface CommonArgs<T> {
  default: T | (() => T);
  doc: string;
  unit?: string;
  secret?: SecretKind;
}

function spec<T>(kind: OptionKind, schema: z.ZodType<T>, args: CommonArgs<T>, values?: readonly string[]): OptionSpec<T> {
  return {
    kind,
    schema,
    default: args.default,
    doc: args.doc,
    secret: args.secret ?? 'none',
    ...(args.unit === undefined ? {} : { unit: args.unit }),
    ...(values === undefined ? {} : { values }),
  };
}

/** Option builders: each returns an {@link OptionSpec}. */
export const opt = {
  string(args: CommonArgs<string> & { schema?: z.ZodType<string> }): OptionSpec<string> {
    return spec('string', args.schema ?? z.string(), args);
  },
  int(args: CommonArgs<number> & { min?: number; max?: number }): OptionSpec<number> {
    let schema = z.number().int();
    if (args.min !== undefined) schema = schema.min(args.min);
    if (args.max !== undefined) schema = schema.max(args.max);
    return spec('int', schema, args);
  },
  number(args: CommonArgs<number> & { min?: number; max?: number }): OptionSpec<number> {
    let schema = z.number();
    if (args.min !== undefined) schema = schema.min(args.min);
    if (args.max !== undefined) schema = schema.max(args.max);
    return spec('number', schema, args);
  },
  bool(args: CommonArgs<boolean>): OptionSpec<boolean> {
    return spec('bool', z.boolean(), args);
  },
  list(args: CommonArgs<readonly string[]> & { item?: z.ZodType<string> }): OptionSpec<readonly string[]> {
    return spec('list', z.array(args.item ?? z.string().min(1)).readonly(), args);
  },
  enum<const V extends readonly [string, ...string[]]>(values: V, args: CommonArgs<V[number]>): OptionSpec<V[number]> {
    return spec('enum', z.enum(values) as unknown as z.ZodType<V[number]>, args, values);
  },
  listOf<const V extends readonly [string, ...string[]]>(
    values: V,
    args: CommonArgs<readonly V[number][]>,
  ): OptionSpec<readonly V[number][]> {
    const schema = z.array(z.enum(values)).readonly() as unknown as z.ZodType<readonly V[number][]>;
    return spec('list', schema, args, values);
  },
};

/** True when `node` is an option spec rather than a group of them. */
export function isOptionSpec(node: OptionSpec<unknown> | SpecTree): node is OptionSpec<unknown> {
  return typeof (node as OptionSpec<unknown>).kind === 'string' && 'schema' in node;
}

/** A flattened option: its dotted path, environment name, flag and spec. */
export interface OptionEntry {
  readonly path: string;
  readonly env: string;
  readonly flag: string;
  readonly spec: OptionSpec<unknown>;
}

/** `leaseTtlMs` → `LEASE_TTL_MS`. */
export function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `leaseTtlMs` → `lease-ttl-ms`. */
export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** Every option of a tree in declaration order. */
export function flattenSpec(tree: SpecTree, prefix: readonly string[] = []): OptionEntry[] {
  const entries: OptionEntry[] = [];
  for (const [key, node] of Object.entries(tree)) {
    const parts = [...prefix, key];
    if (isOptionSpec(node)) {
      entries.push({
        path: parts.join('.'),
        env: `HEARTH_${parts.map(upperSnake).join('_')}`,
        flag: `--${parts.map(kebab).join('-')}`,
        spec: node,
      });
    } else {
      entries.push(...flattenSpec(node, parts));
    }
  }
  return entries;
}
