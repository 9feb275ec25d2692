import type { z } from 'zod'

/** Zod's issues, shortened to one line that names each failing field. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    // Keys can come from the input (records): each is cut short, so a message never echoes a whole payload.
    .map((issue) => `${issue.path.length ? issue.path.map((k) => String(k).slice(0, 40)).join('.') : 'payload'}: ${issue.message.slice(0, 200)}`)
    .join('; ')
}
