/**
 * A CommonJS program requiring the package, which is ESM only: require(esm) works from Node
 * 20.19 and 22.12 on (hence `engines`). Checks that require and import give the same module.
 */
import wspoll = require('wspoll');
import protocol = require('wspoll/protocol');

async function main(): Promise<void> {
  const imported = await import('wspoll');
  if (wspoll.Server !== imported.Server) throw new Error('require and import gave two copies of the module');
  if (typeof protocol.ServerProtocol !== 'function') throw new Error('wspoll/protocol has no ServerProtocol');
  const server = new wspoll.Server({ pingInterval: 0 });
  await server.start('127.0.0.1', 0);
  const port = server.port;
  await server.stop();
  console.log(`ok require('wspoll') is import('wspoll'); a Server listened on port ${port}`);
}

void main();
