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

/**
 * English strings of archivingstore_depot.
 *
 * @package    archivingstore_depot
 * @category   string
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['connecttimeout'] = 'Connection timeout';
$string['connecttimeout_desc'] = 'How long to wait for a connection to depot.';
$string['depotauth'] = 'depot refused this site\'s token (check the token, and that its scope allows this operation and driver): {$a}';
$string['depotfailed'] = 'depot could not carry out the operation: {$a}';
$string['depotintegrity'] = 'The archive depot holds or sent is not the file Moodle has (size or sha256 differ): {$a}';
$string['depotnoref'] = 'This file handle records no depot archive (its file key holds no driver and key).';
$string['depotnotfound'] = 'depot holds no such archive: {$a}';
$string['depotretention'] = 'depot refuses to delete this archive: it is under retention (write-once) until its retention time has passed. {$a}';
$string['depotunavailable'] = 'depot cannot be reached or did not answer in time (see Site administration > Security > HTTP security for blocked hosts and ports): {$a}';
$string['driver'] = 'depot driver';
$string['driver_desc'] = 'The depot storage driver to store on (e.g. worm, local). Empty: depot\'s default driver. The token\'s scope must allow it.';
$string['enabled'] = 'Enabled';
$string['enabled_desc'] = 'Store archives through depot.';
$string['pluginname'] = 'depot';
$string['privacy:metadata:depot'] = 'Archive files are sent to depot, an external archive storage service, together with metadata that identifies the site, the course, the activity, the archive job and the people whose data the archive holds.';
$string['privacy:metadata:depot:archive'] = 'The archive file itself (for example a quiz\'s attempts, which hold its participants\' answers).';
$string['privacy:metadata:depot:cmid'] = 'The id of the course module the archive was made from.';
$string['privacy:metadata:depot:courseid'] = 'The id of the course the archive was made in.';
$string['privacy:metadata:depot:jobid'] = 'The id of the archive job.';
$string['privacy:metadata:depot:siteid'] = 'This site\'s identifier in depot.';
$string['privacy:metadata:depot:userids'] = 'The ids of all users whose data the archive holds, so that depot can find their archives for an access or erasure request.';
$string['retention'] = 'Retention in depot';
$string['retention_both'] = 'Write-once until the job\'s retention time, then deleted (retainUntil and deleteAfter)';
$string['retention_deleteafter'] = 'Deleted after the job\'s retention time, deletable before (deleteAfter only)';
$string['retention_desc'] = 'How the archive job\'s retention time ("Automatic deletion") is passed to depot. Archives of jobs without automatic deletion are kept without either.';
$string['retention_none'] = 'Not passed (depot keeps archives until Moodle deletes them)';
$string['siteid'] = 'Site id';
$string['siteid_desc'] = 'This site\'s id in depot, stored as metadata siteId with every archive. It must equal the siteId of the token\'s scope.';
$string['storagetier'] = 'Storage tier';
$string['storagetier_auto'] = 'From the type of depot\'s driver';
$string['storagetier_desc'] = 'How local_archiving classes this store. Automatic: remote fast for the drivers depot ships (filesystem, S3, FTP, Moodle, NATS), remote slow for other driver plugins.';
$string['storagetier_fast'] = 'Remote, fast';
$string['storagetier_slow'] = 'Remote, slow';
$string['timeout'] = 'Transfer timeout';
$string['timeout_desc'] = 'How long one request to depot may take, uploads and downloads of large archives included.';
$string['token'] = 'API token';
$string['token_desc'] = 'A depot token for this site only: named, scoped to the operations store, retrieve and delete, to the driver(s) above, and to metadata siteId equal to this site\'s id.';
$string['url'] = 'depot URL';
$string['url_desc'] = 'The address of depot serve, e.g. https://depot.example.org. An internal host or a port other than 80/443 must be allowed in Site administration > Security > HTTP security.';
$string['verifytls'] = 'Verify TLS certificate';
$string['verifytls_desc'] = 'Check depot\'s certificate and host name. Moodle\'s curl does not by default; leave this on.';
$string['waittimeout'] = 'Wait for depot';
$string['waittimeout_desc'] = 'How long a store or delete waits for depot\'s worker to finish the queued task.';
