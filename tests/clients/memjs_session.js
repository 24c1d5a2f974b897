// A scripted memjs session (binary protocol, SASL PLAIN when a user is given), driven by
// tests/it/memcache_clients.rs: node memjs_session.js PORT [USER PASSWORD]
// Prints "ok" and exits 0 when every step gave the expected answer.
'use strict';
const assert = require('assert');
const memjs = require('memjs');

async function main() {
  const [port, user, password] = process.argv.slice(2);
  const auth = user ? `${user}:${password}@` : '';
  const mc = memjs.Client.create(`${auth}127.0.0.1:${port}`, { retries: 0, timeout: 5, logger: { log() {} } });
  try {
    assert.ok(await mc.flush());
    assert.strictEqual(await mc.set('memjs:a', 'hello', { expires: 0 }), true);
    let r = await mc.get('memjs:a');
    assert.strictEqual(r.value.toString(), 'hello');
    assert.strictEqual((await mc.get('memjs:missing')).value, null);
    assert.strictEqual(await mc.add('memjs:a', 'x'), false, 'add of an existing key');
    assert.strictEqual(await mc.replace('memjs:nokey', 'x'), false, 'replace of a missing key');
    assert.strictEqual(await mc.replace('memjs:a', 'world'), true);
    assert.strictEqual(await mc.append('memjs:a', '!'), true);
    // memjs 1.3.2's prepend sends the APPEND opcode (0x0E); memcached appends too.
    assert.strictEqual(await mc.prepend('memjs:a', '>'), true);
    assert.strictEqual((await mc.get('memjs:a')).value.toString(), 'world!>');
    r = await mc.increment('memjs:n', 5, { initial: 10 });
    assert.deepStrictEqual([r.success, r.value], [true, 10], 'created with the initial value');
    r = await mc.increment('memjs:n', 5, {});
    assert.strictEqual(r.value, 15);
    r = await mc.decrement('memjs:n', 100, {});
    assert.strictEqual(r.value, 0, 'decrement floors at 0');
    assert.strictEqual(await mc.touch('memjs:a', 100), true);
    assert.strictEqual(await mc.delete('memjs:a'), true);
    assert.strictEqual(await mc.delete('memjs:a'), false);
    const big = 'v'.repeat(100000);
    await mc.set('memjs:big', big, {});
    assert.strictEqual((await mc.get('memjs:big')).value.toString(), big);
    const stats = await new Promise((resolve, reject) =>
      mc.stats((err, server, s) => (err ? reject(err) : resolve(s))));
    assert.ok('curr_items' in stats && 'version' in stats, JSON.stringify(stats));
    assert.ok(await mc.flush());
    assert.strictEqual((await mc.get('memjs:big')).value, null);
    console.log('ok');
  } finally {
    mc.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
