import type {RegisterHookOptions} from '../registry/load.js'
import {entries as backends} from './backends/index.js'
import {entries as benchmarks} from './benchmarks/index.js'
import {entries as encoders} from './encoders/index.js'
import {entries as losses} from './losses/index.js'
import {entries as mergers} from './mergers/index.js'
import {entries as readers} from './readers/index.js'
import {entries as samplers} from './samplers/index.js'

/**
 * codiemb's own `codiemb:register` hook: the built-ins register exactly as a third-party plugin's
 * entries do (declared under `oclif.hooks` in package.json).
 */
export default async function register({registry}: RegisterHookOptions): Promise<void> {
  registry.register(...readers, ...losses, ...samplers, ...encoders, ...mergers, ...benchmarks, ...backends)
}
