import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../../cli/base-command.js'
import {applyHelp} from '../../cli/messages.js'
import type {PullResult} from '../../data/hub.js'

export default class DataPull extends CodiembCommand<typeof DataPull> {
  static {applyHelp(this, 'data:pull')}
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
