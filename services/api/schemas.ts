/** JSON Schemas shared by the API's routes. */

/** A path parameter holding an id (task, alert, revocation): 1–256 characters. */
export function idParam<const Name extends string>(name: Name) {
  return {
    type: 'object',
    required: [name],
    properties: { [name]: { type: 'string', minLength: 1, maxLength: 256 } } as Record<
      Name,
      { type: 'string'; minLength: 1; maxLength: 256 }
    >,
  } as const;
}

/** The body of every audited action a person takes (kill, restore, mark a false positive). */
export const actionBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 2000 },
    actor: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;
