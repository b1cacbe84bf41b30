/* component_tokens.h -- the form in which a place remembers its machine's
 * components (docs/machines.md "Place format").
 *
 * A token is the first COMPONENT_TOKEN_LEN bytes of SHA-256(name 0x00
 * digest): the name is inside, so the same digest under two names never
 * matches, and 8 bytes per component keep a place small while two different
 * components of one key colliding by chance stays negligible (2^-64 per
 * pair). Tokens are sorted, so the script counts shared ones in one merge
 * and a place's bytes do not depend on the order the installer sent them. */
#ifndef PA_ACTIVATION_COMPONENT_TOKENS_H
#define PA_ACTIVATION_COMPONENT_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "activation/v1/activation.pb-c.h"
#include "validate.h"

#define COMPONENT_TOKEN_LEN 8

/* The tokens of a validated request's components, sorted, into `out`
 * (room for COMPONENTS_MAX); returns how many. */
size_t component_tokens(const Activation__V1__ActivateRequest *rq, uint8_t out[COMPONENTS_MAX * COMPONENT_TOKEN_LEN]);

#endif
