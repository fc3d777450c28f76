// Replaced by the bundler with package.json's version; "dev" from source.
declare const __CORDON_VERSION__: string | undefined;
export const VERSION: string = typeof __CORDON_VERSION__ === 'string' ? __CORDON_VERSION__ : '0.1.0-dev';
