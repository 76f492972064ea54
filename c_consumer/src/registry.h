/* Dumping what the linked libtensorflow registers (OpList, KernelList) for `tfinterop inspect`. */
#ifndef TFI_REGISTRY_H
#define TFI_REGISTRY_H

/* Writes the serialized OpList to ops_path and the KernelList to kernels_path (either may be
 * NULL). Returns 0, or -1 after an error line on stderr. */
int dump_registry(const char *ops_path, const char *kernels_path);

#endif
