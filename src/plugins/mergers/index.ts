import type {RegistryEntry} from '../../registry/types.js'

/** Built-in mergers. Each entry imports its implementation lazily in load(). */
export const entries: RegistryEntry[] = []
