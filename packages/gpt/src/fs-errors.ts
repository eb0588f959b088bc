/**
 * What a file-system error code means and what to do about it: the one table behind every message that
 * names a failed read or write (the CLI's errors, the trainer's failed checkpoint save).
 */
export const FS_ERRORS: Readonly<Record<string, { why: string; fix: string }>> = {
  ENOTDIR: { why: 'a file stands where a folder is needed (this path, or a folder on it, is a file)', fix: 'give a path whose folders are all folders' },
  EISDIR: { why: 'a folder stands where a file is needed', fix: 'give the path of a file' },
  EEXIST: { why: 'already exists', fix: 'choose a new path, or remove it' },
  EROFS: { why: 'the file system is read-only', fix: 'choose a location on a writable file system' },
  ENOSPC: { why: 'no space left on the device', fix: 'free space, or choose another location' },
  EDQUOT: { why: 'the disk quota is exceeded', fix: 'free space, or choose another location' },
  EACCES: { why: 'permission denied', fix: 'check its permissions, or choose another location' },
  EPERM: { why: 'operation not permitted', fix: 'check its permissions, or choose another location' },
  ENOENT: { why: 'no such file or folder', fix: 'check the path' },
  ENAMETOOLONG: { why: 'a name on the path is too long', fix: 'choose a shorter path' },
  ELOOP: { why: 'too many symbolic links (a link that points to itself?)', fix: 'fix the link' },
}

/** The table's entry for an error's code, or undefined for another error. */
export const fsErrorReason = (e: unknown): { code: string; why: string; fix: string } | undefined => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return code && FS_ERRORS[code] ? { code, ...FS_ERRORS[code] } : undefined
}
