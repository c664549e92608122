/**
 * `codiemb/testing`: checks for plugin authors (and codiemb's own suite) to run against their
 * entries. A separate entry point from 'codiemb' because it loads node:assert, which library use
 * never needs. Test-runner neutral: the checks throw AssertionErrors and use no node:test.
 */
export {assertLossProperties, lossProperties, registeredLosses} from './loss-properties.js'
export type {LossProperty, LossPropertyOptions, RegisteredLoss} from './loss-properties.js'
