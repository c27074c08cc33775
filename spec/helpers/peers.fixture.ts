/**
 * A suite gated on a peer that is never there, run as a child process by peers.test.ts: skipped
 * on a bare machine, failed under WSPOLL_REQUIRE_PEERS=1. (Not a *.test.ts: npm test skips it.)
 */
import { before, describe, it } from 'node:test';
import { peer } from './peers.js';

const absent = peer('/nonexistent/peer', () => false, 'apt-get install nothing');

describe('a suite needing an absent peer', { skip: absent.skip }, () => {
  before(() => absent.require());
  it('would talk to the peer', () => {});
});

it('a test needing no peer', () => {});
