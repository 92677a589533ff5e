<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

namespace archivingstore_depot\local;

/**
 * What depot's metadata says about an archive job of local_archiving: its course, its course module,
 * the people whose data it holds, and its retention.
 *
 * Read from local_archiving's own tables as its db/install.xml (1.0) defines them:
 *  - local_archiving_job: contextid (a module context), timecreated, settings (JSON of the job's
 *    settings; archive_autodelete and archive_retention_time in seconds, the job form's
 *    "Automatic deletion" and "Retention time");
 *  - local_archiving_activity_task: jobid;
 *  - local_archiving_content: taskid, userid ("ID of the user that created the original data",
 *    one row per archived attempt, submission, …).
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class job_facts {
    /**
     * Looks the job up.
     *
     * @param int $jobid local_archiving's job id.
     * @return array courseid (int|null), cmid (int|null), userids (int[]), timecreated (int),
     *     retention (int|null: seconds after timecreated, null when the job keeps its archives forever).
     */
    public function for_job(int $jobid): array {
        global $DB;
        $job = $DB->get_record('local_archiving_job', ['id' => $jobid], 'id, contextid, timecreated, settings', MUST_EXIST);
        $courseid = null;
        $cmid = null;
        $context = \context::instance_by_id($job->contextid, IGNORE_MISSING);
        if ($context instanceof \context_module) {
            $cmid = (int) $context->instanceid;
            $coursecontext = $context->get_course_context(false);
            $courseid = $coursecontext ? (int) $coursecontext->instanceid : null;
        }
        $userids = $DB->get_fieldset_sql(
            'SELECT DISTINCT c.userid
               FROM {local_archiving_content} c
               JOIN {local_archiving_activity_task} t ON t.id = c.taskid
              WHERE t.jobid = :jobid
           ORDER BY c.userid',
            ['jobid' => $jobid]
        );
        return [
            'courseid' => $courseid,
            'cmid' => $cmid,
            'userids' => array_map('intval', $userids),
            'timecreated' => (int) $job->timecreated,
            'retention' => self::retention_of(json_decode((string) $job->settings)),
        ];
    }

    /**
     * The retention a job's settings ask for.
     *
     * @param mixed $settings The decoded settings JSON of the job.
     * @return int|null Seconds, or null when automatic deletion is off (or the settings were cleared).
     */
    public static function retention_of($settings): ?int {
        if (!is_object($settings) || empty($settings->archive_autodelete)) {
            return null;
        }
        $seconds = (int) ($settings->archive_retention_time ?? 0);
        return $seconds > 0 ? $seconds : null;
    }
}
