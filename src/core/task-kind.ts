/**
 * The two kinds of training task: `ir` (a query against positive and hard-negative passages) and
 * `sts` (a pair of texts with a similarity score). Datasets, samplers, losses and the instruction
 * options are all chosen by it.
 */
export type TaskKind = 'ir' | 'sts'
