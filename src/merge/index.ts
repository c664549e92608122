/** The merge library's public surface (the package entry point re-exports it). */
export {mergeCheckpoints, type InputRef, type InputRecord, type MergeProgressEvent, type MergeReport, type MergeRequest, type TensorRecord} from './engine.js'
export {resolveMergerOptions} from './options.js'
export {SafetensorsStreamWriter, type PlannedTensor} from '../io/safetensors-stream.js'
export {MergeInputError, type Merger, type TensorMergeInput} from './types.js'
