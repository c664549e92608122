/**
 * Progress on screen and in `--events`: turns the events of src/core/events.ts into the one-line
 * output of a listr2 task (a live loss, throughput and ETA where the events allow), and passes each
 * event on to the command's `--events` writer.
 *
 * Counters (the `*-progress` events with a running `done`) can fire per encoder batch; they are
 * written to `--events` at most once a second per counter, their first and last value always, so an
 * NDJSON log stays small on long runs. The screen line follows every event.
 */
import type {ProgressEvent, StepEvent} from '../core/events.js'

/** Seconds as "12s", "3m05s" or "1h02m"; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** Bytes in MB with one decimal ("12.3 MB"). */
function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}

/** "ir 2.1234, sts 1.0456", or with each task's loss terms: "ir 2.1234, sts 1.0456 (mid-infonce 0.812, pro 0.340)". */
function lossText(loss: Record<string, number>, components: Record<string, Record<string, number>> = {}): string {
  return Object.entries(loss)
    .map(([task, v]) => {
      const terms = Object.entries(components[task] ?? {}).map(([name, c]) => `${name} ${c.toFixed(3)}`)
      return `${task} ${v.toFixed(4)}${terms.length ? ` (${terms.join(', ')})` : ''}`
    })
    .join(', ')
}

/**
 * The identity of a counter event (one running count: a task's encoding stage, a merge phase …), or
 * undefined for an event that is not a counter.
 */
function counterKey(event: ProgressEvent): string | undefined {
  switch (event.type) {
    case 'dataset-progress':
      return `${event.type}|${event.dataset}`
    case 'eval-progress':
      return event.done === undefined ? undefined : [event.type, 'model' in event ? event.model : '', event.task, event.stage, event.detail ?? ''].join('|')
    case 'mine-progress':
      return `${event.type}|${event.stage}`
    case 'merge-progress':
      return `${event.type}|${event.phase}`
    case 'embed-progress':
    case 'encode-progress':
    case 'search-progress':
      return event.type
    default:
      return undefined
  }
}

/** Renders events as task output lines, remembering what rates and ETAs need (when each counter started). */
export class ProgressLines {
  private readonly counters = new Map<string, {at: number; done: number}>()
  private readonly datasetStarts = new Map<string, number>()
  private pull = {files: 0, bytes: 0, filesDone: 0, bytesDone: 0, bytesFetched: 0, listedAt: 0}
  private lastProbe = ''

  /** `now` in milliseconds (injectable for tests). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The task output line for `event`, or undefined when the event changes nothing on screen. */
  line(event: ProgressEvent): string | undefined {
    switch (event.type) {
      case 'backend':
      case 'error':
      case 'done':
      case 'stage-start':
      case 'stage-done':
        return undefined
      case 'status':
        return event.message
      case 'plan':
        return `plan: ${event.totalSteps} steps (${event.stepsPerEpoch}/epoch × ${event.epochs}), ${event.datasets.length} datasets, warm-up ${event.warmupSteps}`
      case 'step':
        return this.stepLine(event)
      case 'probe':
        this.lastProbe = ` · probe (step ${event.step}) ${lossText(event.loss)}`
        return `probe loss at step ${event.step}/${event.totalSteps}: ${lossText(event.loss, event.components)}`
      case 'checkpoint':
        return `checkpoint at step ${event.step}: ${event.path}`
      case 'interrupted':
        return `${event.signal} at step ${event.step}/${event.totalSteps}: ${event.checkpoint ? `resume with --resume ${event.checkpoint}` : 'no step to save'}`
      case 'warning':
        return `warning: ${event.message}`
      case 'validation': {
        const text = Object.entries(event.spearman).map(([name, s]) => `${name} Spearman ${s.toFixed(2)}`).join(', ')
        return event.epoch === 0 ? `before training: ${text}` : `validation after epoch ${event.epoch}: ${text}`
      }
      case 'dataset-start':
        this.datasetStarts.set(event.dataset, this.now())
        return `${event.index + 1}/${event.total} ${event.dataset} (${event.reader}, ${event.task})`
      case 'dataset-progress': {
        const started = this.datasetStarts.get(event.dataset)
        const seconds = started === undefined ? 0 : (this.now() - started) / 1000
        const rate = seconds > 0 ? ` · ${Math.round(event.rows / seconds).toLocaleString('en')} rows/s` : ''
        return `${event.dataset}: ${event.rows.toLocaleString('en')} rows${event.rejected ? `, ${event.rejected.toLocaleString('en')} rejected` : ''}${rate}`
      }
      case 'dataset-done':
        return `${event.dataset}: ${event.rows.toLocaleString('en')} rows in ${formatDuration(event.seconds)}`
      case 'listed':
        this.pull = {files: event.files, bytes: event.bytes, filesDone: 0, bytesDone: 0, bytesFetched: 0, listedAt: this.now()}
        return `${event.files} files, ${megabytes(event.bytes)}`
      case 'file-start':
        return `${this.pull.filesDone + 1}/${this.pull.files} ${event.path}${event.resumeFrom ? ` (resuming at ${event.resumeFrom} bytes)` : ''}${this.pullPace()}`
      case 'file-done':
        this.pull.filesDone++
        this.pull.bytesDone += event.size
        if (event.status !== 'present') this.pull.bytesFetched += event.size
        return `${this.pull.filesDone}/${this.pull.files} files${this.pullPace()}`
      case 'encode-progress':
        return `encoded ${event.done}/${event.total}${this.pace(event, event.done, event.total)}`
      case 'search-progress':
        return `searched ${event.done} documents${this.pace(event, event.done)}`
      case 'eval-progress': {
        const where = 'model' in event ? `${event.model} ${event.task}: ` : ''
        const count = event.done !== undefined && event.total ? ` ${event.done}/${event.total}${this.pace(event, event.done, event.total)}` : ''
        return `${where}${event.stage}${event.detail ? ` ${event.detail}` : ''}${count}`
      }
      case 'eval-task':
        return `${'model' in event ? `${event.model} ` : ''}${event.task}: main score ${(event.main_score * 100).toFixed(2)} (${formatDuration(event.evaluation_time)})`
      case 'eval-summary':
        return `results: ${event.dir}`
      case 'eval-model':
        return `${event.model}: STS ${event.sts.toFixed(2)}, retrieval ${event.retrieval.toFixed(2)}`
      case 'embed-progress': {
        const seconds = Math.max(event.seconds, 1e-9)
        return `${event.done} texts, ${event.tokens} tokens · ${(event.done / seconds).toFixed(1)} texts/s · ${Math.round(event.tokens / seconds)} tokens/s`
      }
      case 'mine-progress':
        return `${event.stage} ${event.done}/${event.total}${this.pace(event, event.done, event.total)}`
      case 'merge-progress':
        return event.phase === 'hash'
          ? `hashing inputs ${event.done}/${event.total}`
          : `${event.done}/${event.total} ${event.item}${this.pace(event, event.done, event.total)}`
      default: {
        const unhandled: never = event
        return unhandled
      }
    }
  }

  /** "step 12/40 · loss ir 2.3456 · lr 1.00e-3 · 54.2 ex/s · 1234 tok/s · ETA 1m05s", plus the last probe loss. */
  private stepLine(e: StepEvent): string {
    return (
      `step ${e.step}/${e.totalSteps} · loss ${lossText(e.loss)} · lr ${e.lr.toExponential(2)} · ${e.examplesPerSecond.toFixed(1)} ex/s · ` +
      `${Math.round(e.tokensPerSecond)} tok/s · ETA ${formatDuration(e.etaSeconds)}${this.lastProbe}`
    )
  }

  /** " · 41.2/s · ETA 12s" for a counter, measured from its first event; "" until there is a rate. */
  private pace(event: ProgressEvent, done: number, total?: number): string {
    const key = counterKey(event)
    if (key === undefined) return ''
    const now = this.now()
    const first = this.counters.get(key)
    if (!first || done < first.done) {
      this.counters.set(key, {at: now, done})
      return ''
    }
    const seconds = (now - first.at) / 1000
    const rate = seconds > 0 ? (done - first.done) / seconds : 0
    if (!(rate > 0)) return ''
    const eta = total === undefined ? '' : ` · ETA ${formatDuration((total - done) / rate)}`
    return ` · ${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s${eta}`
  }

  /** " · 12.0/40.0 MB · 2.1 MB/s · ETA 15s" for data pull, from the files finished so far. */
  private pullPace(): string {
    const p = this.pull
    const seconds = (this.now() - p.listedAt) / 1000
    const rate = seconds > 0 ? p.bytesFetched / seconds : 0
    const eta = rate > 0 ? ` · ${megabytes(rate)}/s · ETA ${formatDuration((p.bytes - p.bytesDone) / rate)}` : ''
    return ` · ${megabytes(p.bytesDone)} of ${megabytes(p.bytes)}${eta}`
  }
}

/**
 * Where a command's engine events go: every event to `record` (the `--events` writer; counters at
 * most once a second each), and its line to the output of the listr task in `target`.
 */
export class ProgressReporter {
  /**
   * The listr task whose output line shows the events; a pipeline moves it from task to task. Unset
   * between two tasks: the latest line then waits for the next task given to `into()`.
   */
  target?: {output: string}
  private readonly lines: ProgressLines
  private waitingLine?: string
  private readonly recordedAt = new Map<string, number>()

  /** `now` in milliseconds (injectable for tests). */
  constructor(
    private readonly record: (event: ProgressEvent) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lines = new ProgressLines(now)
  }

  /** Shows the events in `task` from now on; returns the callback to hand an engine as `onEvent`. */
  into(task: {output: string}): (event: ProgressEvent) => void {
    this.target = task
    if (this.waitingLine !== undefined) task.output = this.waitingLine
    this.waitingLine = undefined
    return this.onEvent
  }

  /**
   * Reports one event (an engine's `onEvent`). Returns the line shown for it, if any, for a command
   * that also prints the lines of results (a validation score) where they outlast the live output.
   */
  readonly onEvent = (event: ProgressEvent): string | undefined => {
    if (this.shouldRecord(event)) this.record(event)
    const line = this.lines.line(event)
    if (line !== undefined && this.target) this.target.output = line
    else if (line !== undefined) this.waitingLine = line
    return line
  }

  /** Whether `event` goes to `--events`: always, except a counter's middle values less than a second apart. */
  private shouldRecord(event: ProgressEvent): boolean {
    const key = counterKey(event)
    if (key === undefined) return true
    const now = this.now()
    const last = this.recordedAt.get(key)
    const final = 'total' in event && event.total !== undefined && 'done' in event && event.done === event.total
    if (last !== undefined && now - last < 1000 && !final) return false
    this.recordedAt.set(key, now)
    return true
  }
}
