/**
 * The browser entry point: importing it registers `<saliency-view>`.
 *
 *   import 'webgpu-saliency/web';
 *   <saliency-view model="fashion-vgg" src="boot.png" method="gradCam"></saliency-view>
 */
import { defineSaliencyView } from './saliency-view.js';

export {
  SaliencyView,
  defineSaliencyView,
  readPixels,
  VIEW_METHODS,
  METHOD_LABELS,
  type ViewMethod,
  type ViewState,
  type ImageInput,
  type ClassScore,
  type SaliencyResultDetail,
  type RunTimings,
} from './saliency-view.js';
export { DEFAULT_LIMITS, getLimits, setLimits, type Limits } from '../runtime/limits.js';
export { registerModelLoader, modelSuffixes, sharedGpu, exclusive, cachedModel, clearModelCache, resolveModelRef, type ModelLoader, type ViewModel } from './models.js';

defineSaliencyView();
