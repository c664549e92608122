import type {RegistryEntry} from '../../registry/types.js'

/** Built-in benchmarks. Each entry imports its implementation lazily in load(). */
export const entries: RegistryEntry[] = []
