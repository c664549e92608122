/**
 * Turns `--benchmark` / `--tasks` / the `eval` config section into task definitions: benchmark names
 * load their registry entry; task names are looked up among the user-defined config tasks first,
 * then in every registered benchmark.
 */
import type {Registry} from '../registry/registry.js'
import {taskFromConfig, type BenchmarkImpl, type ConfigTask, type TaskDefinition} from './tasks.js'
import {CodiembError} from '../core/errors.js'

export class TaskSelectionError extends CodiembError {
  override name = 'TaskSelectionError'
}

export interface TaskSelection {
  benchmarks?: string[]
  tasks?: string[]
  /** The `eval.tasks` config entries (strings name benchmark tasks; objects define tasks). */
  configTasks?: (string | ConfigTask)[]
}

async function loadBenchmark(registry: Registry, name: string): Promise<BenchmarkImpl> {
  if (!registry.list('benchmark').some((e) => e.name === name)) {
    throw new TaskSelectionError(`unknown benchmark "${name}"; registered: ${registry.list('benchmark').map((e) => e.name).join(', ') || 'none'}`)
  }
  return registry.load<BenchmarkImpl>('benchmark', name)
}

export async function resolveTasks(registry: Registry, selection: TaskSelection): Promise<TaskDefinition[]> {
  const userDefined = new Map<string, TaskDefinition>()
  const configNames: string[] = []
  for (const t of selection.configTasks ?? []) {
    if (typeof t === 'string') configNames.push(t)
    else userDefined.set(t.name, taskFromConfig(t))
  }
  const out = new Map<string, TaskDefinition>()
  const fromBenchmarks = new Map<string, TaskDefinition>()
  for (const b of selection.benchmarks ?? []) for (const t of (await loadBenchmark(registry, b)).tasks) fromBenchmarks.set(t.name, t)
  if (selection.benchmarks?.length && selection.tasks?.length) {
    // both: the named tasks of those benchmarks (or user-defined ones)
    for (const name of selection.tasks) {
      const task = userDefined.get(name) ?? fromBenchmarks.get(name) ?? [...fromBenchmarks.values()].find((t) => t.name.toLowerCase() === name.toLowerCase())
      if (!task) throw new TaskSelectionError(`task "${name}" is not in benchmark ${selection.benchmarks.join(', ')} (its tasks: ${[...fromBenchmarks.keys()].join(', ')})`)
      out.set(task.name, task)
    }
    return [...out.values()]
  }
  for (const [name, t] of fromBenchmarks) out.set(name, t)
  const names = selection.tasks ?? (selection.benchmarks?.length ? [] : [...configNames, ...userDefined.keys()])
  if (names.length) {
    const known = new Map<string, TaskDefinition>()
    for (const e of registry.list('benchmark')) {
      for (const t of (await registry.load<BenchmarkImpl>('benchmark', e.name)).tasks) if (!known.has(t.name)) known.set(t.name, t)
    }
    for (const name of names) {
      const task = userDefined.get(name) ?? known.get(name) ?? [...known.values()].find((t) => t.name.toLowerCase() === name.toLowerCase())
      if (!task) {
        throw new TaskSelectionError(
          `unknown task "${name}": not a user-defined task in the eval config nor a task of a registered benchmark (known: ${[...userDefined.keys(), ...known.keys()].join(', ')})`,
        )
      }
      out.set(task.name, task)
    }
  }
  if (!out.size) throw new TaskSelectionError('no tasks selected: give --benchmark NAME or --tasks A,B (or eval.benchmark / eval.tasks in the config)')
  return [...out.values()]
}
