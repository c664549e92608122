/**
 * The decoder recipes plan from their model's config.json alone: `train --dry-run --device-memory
 * 141GiB` on a machine without the weights or the training files (as here: ../shared holds only the
 * config.json files of the paper's backbones).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {runNode} from '../helpers/cli.js'
import {REPO_ROOT, shared} from '../helpers/env.js'

const RECIPES = [
  // MTEB lists 2,724,880,896 parameters for MiniCPM-Embedding; the reconstructed config reproduces it.
  {recipe: 'minicpm-embedding', model: 'MiniCPM-Embedding', parameters: 2_724_880_896, lora: false},
  {recipe: 'qwen3-embedding-0.6b', model: 'Qwen3-Embedding-0.6B', parameters: 595_776_512, lora: true},
]

for (const r of RECIPES) {
  test(`train --dry-run plans recipes/train/${r.recipe}.yaml for a 141 GiB device from config.json alone`, (t) => {
    const config = shared(t, 'fixtures', 'configs', `${r.model}.config.json`)
    if (!config) return
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-recipe-'))
    try {
      mkdirSync(join(dir, 'models', r.model), {recursive: true})
      copyFileSync(config, join(dir, 'models', r.model, 'config.json'))
      cpSync(join(REPO_ROOT, 'recipes'), join(dir, 'recipes'), {recursive: true})
      const run = runNode(
        [join(REPO_ROOT, 'bin', 'run.js'), 'train', '--config', `recipes/train/${r.recipe}.yaml`, '--dry-run', '--backend', 'torch', '--device', 'cuda', '--device-memory', '141GiB', '--json'],
        {cwd: dir},
      )
      assert.equal(run.status, 0, run.stdout + run.stderr)
      const result = run.json.result
      assert.equal(result.dryRun, true)
      assert.equal(result.plan, null)
      assert.equal(result.missingData.length, 7)
      const memory = result.memory
      assert.equal(memory.parameters, r.parameters)
      assert.equal(memory.kernels, 'fused')
      assert.equal(memory.deviceBytes, 141 * 2 ** 30)
      if (r.lora) assert.ok(memory.trainableParameters > 0 && memory.trainableParameters < r.parameters / 20, `LoRA trains ${memory.trainableParameters}`)
      else assert.equal(memory.trainableParameters, undefined)
      assert.deepEqual(memory.tasks.map((x: {task: string}) => x.task), ['ir', 'sts'])
      for (const task of memory.tasks) {
        assert.equal(task.configured.checkpointing, true)
        assert.equal(task.configured.fits, true, `${task.task}: ${JSON.stringify(task.configured)}`)
      }
      assert.ok(run.json.warnings.some((w: string) => /training file\(s\) not found/.test(w)))
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
}
