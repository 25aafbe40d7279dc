// gcs_firebase_emu.js: start the Cloud Storage emulator of firebase-tools
// (its GCS JSON API: media uploads, single-request resumable uploads,
// alt=media with Range, metadata, list with prefix/maxResults/pageToken,
// delete) on 127.0.0.1:PORT, without the firebase CLI, which needs Java 21
// and downloads a rules runtime at start: neither works offline here.
// It checks no credentials and ignores ifGenerationMatch and startOffset.
// For tests/integration/gcs.sh only.
//
//	NODE_PATH=$FIREBASE_TOOLS_DIR/node_modules node gcs_firebase_emu.js PORT
const { StorageEmulator } = require("firebase-tools/lib/emulator/storage");
const { createApp } = require("firebase-tools/lib/emulator/storage/server");
const { EmulatorRegistry } = require("firebase-tools/lib/emulator/registry");

const port = Number(process.argv[2]);
(async () => {
  const emu = new StorageEmulator({ projectId: "demo-logship", port,
    host: "127.0.0.1", rules: { name: "unused", content: "" },
    auto_download: false });
  emu.getInfo = () => ({ name: "storage", host: "127.0.0.1", port });
  EmulatorRegistry.set("storage", emu);	// for the URLs it builds
  const app = await createApp("demo-logship", emu);
  app.listen(port, "127.0.0.1", () => console.log("listening " + port));
})().catch((e) => { console.error(e); process.exit(1); });
