/* sw_run_dir — where one training run writes: ms-swift's `vN-YYYYMMDD-HHMMSS` folder per run
 * under output_dir (--add_version true, the default), or output_dir itself (--add_version
 * false), which then must not already hold another run's records. Finding the newest checkpoint
 * over every run of an output_dir (--resume_from_checkpoint latest), and removing what a failed
 * run created without writing anything into it.
 *
 * Versions follow ms-swift's add_version_to_work_dir: N is one more than the largest number of
 * any entry of output_dir whose name starts with "v<digits>" (0 for the first), the time is the
 * local time the run started. */
#ifndef SW_RUN_DIR_H
#define SW_RUN_DIR_H

/* Create output_dir (mkdir -p) and a new output_dir/vN-YYYYMMDD-HHMMSS in it. *run_dir is
 * malloc'ed; *made_parent (may be NULL) is 1 when output_dir did not exist before. Two runs
 * starting at once get different folders (mkdir, retried with N + 1). */
int sw_run_dir_create(const char *output_dir, char **run_dir, int *made_parent);

/* The newest checkpoint-<N> of output_dir's runs: in the highest-numbered vN-* folder that holds
 * one, or in output_dir itself (runs with --add_version false) when its newest checkpoint was
 * modified later or there is no versioned one. *path malloc'ed; SW_ENOTFOUND naming output_dir
 * when there is none. */
int sw_run_dir_latest_checkpoint(const char *output_dir, char **path);

/* SW_EINVAL when dir already holds a run's records (a non-empty logging.jsonl or a
 * checkpoint-<N> folder), with a message saying how to continue or keep them; 0 when dir does
 * not exist or holds none. */
int sw_run_dir_check_unused(const char *dir);

/* The run folder that a checkpoint folder belongs to when a resumed run should continue it:
 * the checkpoint's parent when that is output_dir itself or a folder directly inside it
 * (compared by real path). *run_dir is malloc'ed (output_dir-relative spelling: "out" or
 * "out/v0-..."), or NULL when the checkpoint lives elsewhere. */
int sw_run_dir_of_checkpoint(const char *output_dir, const char *ckpt, char **run_dir);

/* After a failed run: remove the empty files and folders it created (fresh_files lists names
 * inside run_dir that this run created, e.g. "logging.jsonl", "images", "runs"; each is removed
 * only when empty), then run_dir itself when it is empty and remove_run_dir is set, then
 * output_dir when made_parent and it is empty. Never removes anything holding data. */
void sw_run_dir_cleanup(const char *output_dir, const char *run_dir, int remove_run_dir,
                        int made_parent, const char *const *fresh_files);

#endif
