import {Help} from '@oclif/core'
import {commandHelp} from './messages.js'

/** Examples under the root `codiemb --help` (oclif's root help has no section for them): messages/root.md. */
export const ROOT_EXAMPLES = commandHelp('root').examples

/** codiemb's help: oclif's, plus an EXAMPLES section in the root help. Loaded lazily by oclif (no heavy imports). */
export default class CodiembHelp extends Help {
  override formatRoot(): string {
    const lines = ROOT_EXAMPLES.flatMap((example) => {
      const {description, command} = typeof example === 'string' ? {description: '', command: example} : example
      return [...(description ? [`  ${description}`] : []), `    $ ${this.render(command)}`, '']
    })
    return `${super.formatRoot()}\n\nEXAMPLES\n${lines.join('\n').trimEnd()}`
  }
}
