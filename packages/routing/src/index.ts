export { mseBalanceLoss, switchBalanceLoss } from './balance'
export { linearRouter, schemeRouter } from './routers'
export { type TopK, topKGates } from './topk'
