import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../../cli/base-command.js'
import type {PullResult} from '../../data/hub.js'

export default class DataPull extends CodiembCommand<typeof DataPull> {
  static override summary = 'Download a Hugging Face hub dataset repository (e.g. C-MTEB/T2Retrieval) for prepare and eval.'
  static override description = `Lists the repository's files at --revision and downloads them into --out (default data/REPO_ID, where eval --data-dir data looks). HF_ENDPOINT selects the hub (a mirror or a local server), HF_TOKEN authenticates for private or gated repositories.

Interrupted downloads resume where they stopped (HTTP Range); files already present with the listed size are skipped. Every file is checked against the size the hub lists, and LFS files against their sha256.`
  static override examples = [
    {description: 'A C-MTEB retrieval task into data/C-MTEB/T2Retrieval, where `codiemb eval --data-dir data` finds it.', command: '<%= config.bin %> data pull C-MTEB/T2Retrieval'},
    {description: 'A pinned revision into a folder of your choice.', command: '<%= config.bin %> data pull C-MTEB/ATEC --revision 0f319b1142f28d00e055a6770f3f726ae9b7d865 --out data/C-MTEB/ATEC'},
    {description: 'A model to embed with or fine-tune (through a mirror: set HF_ENDPOINT=https://hf-mirror.com).', command: '<%= config.bin %> data pull BAAI/bge-small-zh-v1.5 --model --out models/bge-small-zh-v1.5'},
    {description: 'Only the Parquet files, with a --json summary.', command: '<%= config.bin %> data pull C-MTEB/T2Retrieval-qrels --include "data/*.parquet" --json'},
  ]
  static override args = {
    repo: Args.string({description: 'Repository id, OWNER/NAME.', required: true}),
  }
  static override flags = {
    ...CodiembCommand.progressFlags,
    revision: Flags.string({char: 'r', summary: 'Branch, tag or commit.', default: 'main'}),
    out: Flags.string({char: 'o', summary: 'Destination directory (default: data/REPO_ID).', helpValue: 'DIR'}),
    include: Flags.string({summary: 'Only files matching this glob (* within a folder, ** across folders); repeatable.', multiple: true}),
    model: Flags.boolean({summary: 'The repository is a model, not a dataset.'}),
  }

  protected async exec(): Promise<PullResult> {
    const {pullRepo, HubError} = await import('../../data/hub.js')
    const reporter = this.reporter()
    let result!: PullResult
    await this.tasks([
      {
        title: `Downloading ${this.args.repo}@${this.flags.revision}`,
        task: async (_ctx, task) => {
          try {
            result = await pullRepo(this.args.repo, {
              revision: this.flags.revision,
              out: this.flags.out,
              include: this.flags.include,
              repoType: this.flags.model ? 'model' : 'dataset',
              onEvent: reporter.into(task),
            })
          } catch (error) {
            if (error instanceof HubError) throw new CodiembError(error.message, {exitCode: error.exitCode, name: 'HubError'})
            throw error
          }
        },
      },
    ])
    if (!this.jsonEnabled()) {
      const counts = {downloaded: 0, resumed: 0, present: 0}
      for (const file of result.files) counts[file.status]++
      this.log(`${result.repo}@${result.revision} -> ${result.out}: ${result.files.length} files (${counts.downloaded} downloaded, ${counts.resumed} resumed, ${counts.present} already present), ${(result.downloadedBytes / 1e6).toFixed(1)} MB fetched`)
    }
    return result
  }
}
