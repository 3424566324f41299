// SIP.js, as a browser runs it, against Herald over WebSocket: Bob and
// Alice register, Alice sends Bob a MESSAGE, Bob subscribes to Alice's
// presence and sees what she PUBLISHes. Exits 0 only if all of it works.
// Usage: node client.mjs <ws port>
import WebSocket from "ws";
globalThis.WebSocket = WebSocket; // Node 20 has no global WebSocket
const { UserAgent, Registerer, Messager, Publisher, Subscriber } = await import("sip.js");

const port = process.argv[2];
const fail = (why) => { console.error("FAIL:", why); process.exit(1); };
setTimeout(() => fail("timed out"), 20000);

function ua(user, onMessage) {
  return new UserAgent({
    uri: UserAgent.makeURI(`sip:${user}@example.com`),
    transportOptions: { server: `ws://127.0.0.1:${port}` },
    logLevel: "error",
    delegate: { onMessage },
  });
}
const until = async (check, what) => {
  for (let i = 0; i < 100; i++) { if (check()) return; await new Promise((r) => setTimeout(r, 50)); }
  fail(what);
};

let received = null;
const bob = ua("bob", (m) => { received = m.request.body; m.accept(); });
const alice = ua("alice", () => {});
await bob.start();
await alice.start();
await new Registerer(bob).register();
await new Registerer(alice).register();

// Page mode: Alice -> Bob, answered by Bob's SIP.js.
await new Promise((resolve) => {
  new Messager(alice, UserAgent.makeURI("sip:bob@example.com"), "hi from sip.js").message({
    requestDelegate: {
      onAccept: () => resolve(),
      onReject: (r) => fail("MESSAGE rejected " + r.message.statusCode),
    },
  });
});
await until(() => received === "hi from sip.js", "Bob never got the MESSAGE");
console.log("MESSAGE ok");

// Presence: Bob watches Alice; Alice publishes; Bob's NOTIFY carries it.
const bodies = [];
const sub = new Subscriber(bob, UserAgent.makeURI("sip:alice@example.com"), "presence");
sub.delegate = { onNotify: (n) => { bodies.push(n.request.body); n.accept(); } };
await sub.subscribe();
await until(() => bodies.length >= 1, "no NOTIFY after SUBSCRIBE");
const pidf = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">
  <tuple id="sipjs"><status><basic>open</basic></status><note>on SIP.js</note></tuple>
</presence>`;
const pub = new Publisher(alice, UserAgent.makeURI("sip:alice@example.com"), "presence", {
  contentType: "application/pidf+xml",
});
await pub.publish(pidf);
await until(() => bodies.some((b) => b.includes("on SIP.js")), "Bob never saw Alice's publication");
console.log("PRESENCE ok");
process.exit(0);
