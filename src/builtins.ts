/**
 * The composition root: codiemb's built-in entries, registered exactly as a third-party plugin's are.
 * `register` is codiemb's own `codiemb:register` hook (declared under `oclif.hooks` in package.json);
 * `builtinRegistry()` builds a registry of the built-ins alone, for library use and tests. Library
 * functions never build a registry themselves: they receive one.
 */
import {Registry} from './registry/registry.js'
import type {RegisterHookOptions} from './registry/types.js'
import {entries as backends} from './tensor/backends/index.js'
import {entries as benchmarks} from './eval/benchmarks/index.js'
import {entries as encoders} from './model/encoders/index.js'
import {entries as losses} from './train/losses/index.js'
import {entries as mergers} from './merge/methods/index.js'
import {entries as readers} from './data/readers/index.js'
import {entries as samplers} from './train/samplers/index.js'

/** The npm name the built-in entries are attributed to. */
export const BUILTIN_PLUGIN = 'codiemb'

export default async function register({registry}: RegisterHookOptions): Promise<void> {
  registry.register(...readers, ...losses, ...samplers, ...encoders, ...mergers, ...benchmarks, ...backends)
}

/** The built-in entries alone, without oclif (library use and tests). */
export async function builtinRegistry(): Promise<Registry> {
  const registry = new Registry()
  await register({registry: registry.scoped(BUILTIN_PLUGIN)})
  return registry
}
