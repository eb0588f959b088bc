// Serves repro.html with onnxruntime-web's dist and prints what Chromium computes. Needs playwright-core and
// onnxruntime-web installed (as in this repository), and a Chromium: MOAS_CHROMIUM or /usr/bin/chromium.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(join(here, '../../../apps/web/package.json'))
const ortDist = join(dirname(require.resolve('onnxruntime-web')), '.')
const { chromium } = require('playwright-core')
const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.wasm': 'application/wasm' }
const server = createServer(async (req, res) => {
  const path = req.url.split('?')[0]
  const file = path.startsWith('/ort/') ? join(ortDist, path.slice(5)) : join(here, path === '/' ? 'repro.html' : path)
  try {
    const body = await readFile(file)
    res.writeHead(200, {
      'Content-Type': types[extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    })
    res.end(body)
  } catch {
    res.writeHead(404).end()
  }
}).listen(0)
const browser = await chromium.launch({
  executablePath: process.env.MOAS_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu'],
})
const page = await browser.newPage()
await page.goto(`http://127.0.0.1:${server.address().port}/${process.argv[2] === 'webgpu' ? '?build=webgpu' : ''}`)
await page.waitForFunction(() => document.getElementById('out').textContent !== 'running…', null, { timeout: 120_000 })
console.log(await page.evaluate(() => document.getElementById('out').textContent))
console.log('adapter:', await page.evaluate(async () => (await navigator.gpu?.requestAdapter())?.info?.architecture ?? 'none'))
await browser.close()
server.close()
