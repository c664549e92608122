import type {ChalkInstance} from 'chalk'

/**
 * chalk, honouring NO_COLOR (https://no-color.org: present and non-empty turns colour off), which chalk 5
 * itself ignores. Commands get their colours here, never from `chalk` directly.
 */
export async function colours(): Promise<ChalkInstance> {
  const {Chalk, default: chalk} = await import('chalk')
  return process.env.NO_COLOR ? new Chalk({level: 0}) : chalk
}
