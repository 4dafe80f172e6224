#ifndef AUTHD_CXCRYPT_SHIM_H
#define AUTHD_CXCRYPT_SHIM_H
#include <crypt.h>
#endif
