/**
 * GetPropagation waits over real gRPC: a cancelled call frees its slot at once (not after wait_ms),
 * a deadline ends the wait with an answer, and one caller cannot hold more than its share of slots.
 */
import assert from 'node:assert/strict';
import { Metadata, status, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { GetPropagationRequest, type GetPropagationResponse } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { eventually } from '../../helpers/eventually.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

type Outcome = { code: status; details: string; ms: number };

describe('GetPropagation waits: cancellation, deadlines, per-caller cap (over gRPC)', () => {
  let ta: TestAuthority;
  const logger = recordingLogger();
  before(async () => {
    ta = await startTestAuthority({ TA_LOG_LEVEL: 'info' }, {}, logger);
  });
  after(() => ta?.close());

  /** A wait for sequence 1 from one verifier (there is none); returns the call and its outcome. */
  const wait = (deadlineMs: number, waitMs = 30_000): { call: ClientUnaryCall; done: Promise<Outcome> } => {
    const started = Date.now();
    let call!: ClientUnaryCall;
    const done = new Promise<Outcome>((resolve) => {
      call = ta.client.raw.getPropagation(
        GetPropagationRequest.fromPartial({ sequence: 1, minVerifiers: 1, waitMs }),
        new Metadata(),
        { deadline: new Date(Date.now() + deadlineMs) },
        (err: ServiceError | null, _res?: GetPropagationResponse) => resolve({ code: err ? err.code : status.OK, details: err?.details ?? '', ms: Date.now() - started }),
      );
    });
    return { call, done };
  };
  /** A short probe: refused (RESOURCE_EXHAUSTED) when no slot is free, else it waits ~200 ms. */
  const probe = () => wait(200).done;

  it('holds at most 8 waits per caller; cancelling them frees their slots at once', async () => {
    const held = Array.from({ length: 8 }, () => wait(60_000));
    // Once the 8 are registered, a 9th from the same caller is refused at once.
    let refused: Outcome | undefined;
    await eventually(async () => (refused = await probe()).code === status.RESOURCE_EXHAUSTED, 5000, 'a 9th wait refused');
    assert.match(refused!.details, /this caller already has 8 GetPropagation calls waiting/);
    const cancelledAt = Date.now();
    for (const h of held) h.call.cancel();
    for (const h of held) assert.equal((await h.done).code, status.CANCELLED);
    let freedMs = -1;
    await eventually(
      async () => {
        const sent = Date.now();
        if ((await probe()).code === status.RESOURCE_EXHAUSTED) return false;
        freedMs = sent - cancelledAt;
        return true;
      },
      5000,
      'a slot free after cancelling',
    );
    console.log(`      slots free ${freedMs} ms after cancelling 8 waits of wait_ms=30000`);
    assert.ok(freedMs < 5000, `freed after ${freedMs} ms`);
    // All 8 are free again, not just one.
    const again = Array.from({ length: 8 }, () => wait(400));
    for (const a of again) assert.notEqual((await a.done).code, status.RESOURCE_EXHAUSTED);
  });

  it('ends a wait at the call deadline with an answer, not after wait_ms', async () => {
    const before = logger.lines.length;
    const out = await wait(300).done;
    // The answer races the client's own deadline timer, so either may win at the client; the
    // server's access line says what it did and when.
    assert.ok(out.code === status.OK || out.code === status.DEADLINE_EXCEEDED, `${status[out.code]}: ${out.details}`);
    const line = () => logger.lines.slice(before).find((l) => l.msg === 'rpc' && l.fields.method === 'GetPropagation');
    await eventually(() => line() !== undefined, 5000, 'the access line of the wait');
    assert.equal(line()!.fields.code, 'OK');
    assert.ok(Number(line()!.fields.ms) < 1000, `the server answered after ${String(line()!.fields.ms)} ms`);
  });

  it('marks a cancelled wait in its access line', async () => {
    const before = logger.lines.length;
    const w = wait(60_000);
    await eventually(async () => (await probe()).code !== status.INVALID_ARGUMENT, 5000); // the wait has reached the server
    w.call.cancel();
    await w.done;
    await eventually(() => logger.lines.slice(before).some((l) => l.msg === 'rpc' && l.fields.method === 'GetPropagation' && l.fields.cancelled === true), 5000, 'a cancelled access line');
  });
});
