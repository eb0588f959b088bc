export { linearRouter, schemeRouter } from './routers'
export { type TopK, topKGates } from './topk'
export { mseBalanceLoss, switchBalanceLoss } from './balance'
