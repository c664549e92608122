import {Args, Flags} from '@oclif/core'
import {CodiembCommand, CodiembError} from '../../cli/base-command.js'
import {applyHelp} from '../../cli/messages.js'
import type {PullResult} from '../../data/hub.js'

/** A duration flag in seconds (fractions allowed), handed to the library in milliseconds; a bad value is a usage error (exit code 2). */
const seconds = Flags.custom<number>({
  helpValue: 'SECONDS',
  parse: async (input) => {
    const value = Number(input)
    if (input.trim() === '' || !Number.isFinite(value) || value <= 0) throw new CodiembError(`expected a number of seconds > 0, got ${JSON.stringify(input)}`)
    return value
  },
})

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
    'connect-timeout': seconds({summary: 'Seconds to wait for a response to start (connect, TLS, headers).', default: 30, env: 'CODIEMB_PULL_CONNECT_TIMEOUT', helpGroup: 'NETWORK'}),
    'idle-timeout': seconds({summary: 'Seconds a response body may stall before the attempt fails (and is retried).', default: 60, env: 'CODIEMB_PULL_IDLE_TIMEOUT', helpGroup: 'NETWORK'}),
    retries: Flags.integer({summary: 'Further attempts per request after a network error, timeout or HTTP 408/429/5xx.', helpValue: 'N', default: 3, min: 0, max: 20, env: 'CODIEMB_PULL_RETRIES', helpGroup: 'NETWORK'}),
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
              connectTimeoutMs: this.flags['connect-timeout'] * 1000,
              idleTimeoutMs: this.flags['idle-timeout'] * 1000,
              retries: this.flags.retries,
              onEvent: reporter.into(task),
            })
          } catch (error) {
            if (error instanceof HubError) throw new CodiembError(error.message, {exitCode: error.exitCode, name: 'HubError'})
            throw error
          }
        },
      },
    ])
    for (const skip of result.skipped) this.addWarning(`not written: ${skip.path} (${skip.reason})`)
    if (!this.jsonEnabled()) {
      const counts = {downloaded: 0, resumed: 0, present: 0}
      for (const file of result.files) counts[file.status]++
      const skipped = result.skipped.length ? `, ${result.skipped.length} skipped` : ''
      this.log(`${result.repo}@${result.revision} -> ${result.out}: ${result.files.length} files (${counts.downloaded} downloaded, ${counts.resumed} resumed, ${counts.present} already present${skipped}), ${(result.downloadedBytes / 1e6).toFixed(1)} MB fetched`)
    }
    return result
  }
}
