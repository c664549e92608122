/**
 * HubError, the one error class of `data pull` (src/data/hub.ts and its helpers hub-http.ts and
 * hub-paths.ts), in a module of its own so the helpers can throw it without importing hub.ts.
 */
import {CodiembError, EXIT_FAILURE, EXIT_USER_ERROR} from '../core/errors.js'

/**
 * A `data pull` failure. Exit code 1 (EXIT_FAILURE) by default: the hub, a mirror or the network
 * failed (listing, HTTP errors, timeouts, size or sha256 mismatches, a listing with unsafe or
 * colliding paths, a pagination link to another origin), and the same command may succeed later or
 * against another hub. Exit code 2 (EXIT_USER_ERROR) when the request itself is wrong: a malformed
 * repository id or revision, no such repository at that revision, an option out of range.
 */
export class HubError extends CodiembError {
  override name = 'HubError'
  constructor(message: string, exitCode: typeof EXIT_FAILURE | typeof EXIT_USER_ERROR = EXIT_FAILURE) {
    super(message, {exitCode})
  }
}
