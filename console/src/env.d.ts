/** CSS imported for its side effect; Vite bundles it into console/dist/assets. */
declare module '*.css';
