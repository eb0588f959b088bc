// @moas/trainer (browser-safe): data, schedules, dropout noise, training and eval sessions, presets,
// statistics and charts. Runs on disk (train, compare, WikiText-2, evaluateText) are in `@moas/trainer/node`.

export * from './chart'
export * from './data/index.js'
export * from './errors'
export * from './eval-session'
export * from './evaluate'
export * from './graphs'
export * from './kv-route'
export * from './loop'
export * from './noise'
export * from './presets'
export * from './schedule'
export * from './stats'
export * from './training-session'
