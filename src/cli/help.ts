import {Help} from '@oclif/core'

/** Examples under the root `codiemb --help` (oclif's root help has no section for them). */
export const ROOT_EXAMPLES = [
  ['Run the whole pipeline on the bundled sample (prepare, train, merge, eval, report)', 'quickstart --steps 20'],
  ['What is registered, and which tensor backends this machine has', 'list --kind loss'],
  ['', 'doctor'],
  ['Prepare the bundled sample as Arrow files', 'prepare --config recipes/quickstart/prepare.yaml --data-root quickstart/data --out prepared'],
  ['The paper’s training settings for bge-large-zh-v1.5, resolved', 'config print --config recipes/train/bge-large-zh-v1.5.yaml'],
]

/** codiemb's help: oclif's, plus an EXAMPLES section in the root help. Loaded lazily by oclif (no heavy imports). */
export default class CodiembHelp extends Help {
  override formatRoot(): string {
    const bin = this.config.bin
    const lines = ROOT_EXAMPLES.flatMap(([title, cmd]) => [...(title ? [`  ${title}`] : []), `    $ ${bin} ${cmd}`, ''])
    return `${super.formatRoot()}\n\nEXAMPLES\n${lines.join('\n').trimEnd()}`
  }
}
