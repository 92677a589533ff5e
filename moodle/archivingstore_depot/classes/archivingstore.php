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
 * local_archiving storage driver that stores archives through depot (CONTRACT §9).
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace archivingstore_depot;

use archivingstore_depot\local\client\depot_client;
use archivingstore_depot\local\client\depot_exception;
use archivingstore_depot\local\client\moodle_curl_transport;
use archivingstore_depot\local\job_facts;
use local_archiving\exception\storage_exception;
use local_archiving\file_handle;
use local_archiving\type\storage_tier;

/**
 * Stores local_archiving's archive files in depot, which keeps them write-once on its storage drivers.
 *
 * Written against local_archiving 1.0's storage interface (classes/driver/archivingstore.php,
 * classes/file_handle.php, classes/type/storage_tier.php, classes/exception/storage_exception.php)
 * and its bundled archivingstore_localdir as the model of a store.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class archivingstore extends \local_archiving\driver\archivingstore {
    /** @var string This store's name in local_archiving's file handles. */
    public const STORENAME = 'depot';

    /** @var string[] depot driver types that are reached over the network but answer at once. */
    private const FAST_TYPES = ['filesystem', 's3', 'ftp', 'moodle', 'nats'];

    /** @var depot_client|null The client (built from the settings on first use unless injected). */
    private ?depot_client $client;

    /** @var job_facts Where a job's course, module, people and retention come from. */
    private job_facts $jobfacts;

    /** @var \stdClass|null The plugin's settings (read on first use unless injected). */
    private ?\stdClass $config;

    /**
     * local_archiving creates stores without arguments; tests inject the client, facts and settings.
     *
     * @param depot_client|null $client The client to use.
     * @param job_facts|null $jobfacts Where job facts come from.
     * @param \stdClass|null $config Settings as get_config('archivingstore_depot') returns them.
     */
    public function __construct(?depot_client $client = null, ?job_facts $jobfacts = null, ?\stdClass $config = null) {
        $this->client = $client;
        $this->jobfacts = $jobfacts ?? new job_facts();
        $this->config = $config;
    }

    /**
     * The storage tier: the configured setting, or from the type of depot's driver (last seen in GET /v1/drivers).
     * No depot driver lets Moodle read an archive in place, so none is LOCAL; types depot ships answer at once
     * (REMOTE_FAST); a plugin driver of unknown kind is taken as REMOTE_SLOW until the admin says otherwise.
     *
     * @return storage_tier
     */
    public static function get_storage_tier(): storage_tier {
        $setting = (string) get_config('archivingstore_depot', 'storagetier');
        if ($setting === 'REMOTE_FAST') {
            return storage_tier::REMOTE_FAST;
        }
        if ($setting === 'REMOTE_SLOW') {
            return storage_tier::REMOTE_SLOW;
        }
        return self::tier_for_type((string) get_config('archivingstore_depot', 'drivertype'));
    }

    /**
     * The tier a depot driver type stands for.
     *
     * @param string $type depot's driver type, '' when not known yet.
     * @return storage_tier
     */
    public static function tier_for_type(string $type): storage_tier {
        if ($type === '' || in_array($type, self::FAST_TYPES, true)) {
            return storage_tier::REMOTE_FAST;
        }
        return storage_tier::REMOTE_SLOW;
    }

    /**
     * Archives can be read back.
     *
     * @return bool
     */
    public static function supports_retrieve(): bool {
        return true;
    }

    /**
     * Ready once depot's URL, a token and this site's id are set.
     *
     * @return bool
     */
    public static function is_ready(): bool {
        $config = get_config('archivingstore_depot');
        return !empty($config->url) && !empty($config->token) && !empty($config->siteid);
    }

    /**
     * Available when depot answers, lists the configured driver (or a default one) as healthy, and has
     * more than 1 GiB free where the backend reports its space (as local_archiving's own stores require).
     *
     * @return bool
     */
    public function is_available(): bool {
        $driver = $this->driver_entry();
        if ($driver === null || ($driver['healthy'] ?? true) === false) {
            return false;
        }
        $free = $driver['space']['freeBytes'] ?? null;
        return $free === null || $free > 1024 * 1024 * 1024;
    }

    /**
     * Free bytes of the configured driver as depot reports them.
     *
     * @return int|null null when depot cannot be asked or the backend does not report its space (S3, …).
     */
    public function get_free_bytes(): ?int {
        $free = $this->driver_entry()['space']['freeBytes'] ?? null;
        return is_numeric($free) ? (int) $free : null;
    }

    /**
     * Sends the file to depot (streamed, with its sha256 and size so depot checks what it received), waits
     * for the store's result and records depot's ref in the handle's filekey.
     *
     * @param int $jobid local_archiving's job.
     * @param \stored_file $file The file; stays the caller's.
     * @param string $path The path local_archiving files it under (kept as metadata and in the handle).
     * @return file_handle
     * @throws storage_exception
     */
    public function store(int $jobid, \stored_file $file, string $path): file_handle {
        $config = $this->config();
        $facts = $this->jobfacts->for_job($jobid);
        $dir = make_request_directory();
        $copy = $dir . '/upload';
        try {
            [$sha256, $size] = $this->copy_and_hash($file, $copy);
            $metadata = [
                'siteId' => (string) $config->siteid,
                'jobId' => (string) $jobid,
                'userIds' => array_map('strval', $facts['userids']),
                'component' => 'local_archiving',
                'filepath' => trim($path, '/'),
            ];
            if ($facts['courseid'] !== null) {
                $metadata['courseId'] = (string) $facts['courseid'];
            }
            if ($facts['cmid'] !== null) {
                $metadata['cmid'] = (string) $facts['cmid'];
            }
            $task = ['name' => $file->get_filename(), 'sha256' => $sha256, 'size' => $size, 'metadata' => $metadata];
            if (!empty($config->driver)) {
                $task['driver'] = (string) $config->driver;
            }
            $task += self::retention_fields($facts, (string) ($config->retention ?? 'both'));
            $result = $this->client()->store($copy, $task);
        } catch (depot_exception $e) {
            throw self::storage_failure($e);
        } finally {
            @unlink($copy);
        }
        $ref = (array) ($result['ref'] ?? []);
        if (($result['sha256'] ?? null) !== $sha256 || (int) ($result['size'] ?? -1) !== $size || empty($ref['driver'])
                || empty($ref['key'])) {
            throw new storage_exception('depotintegrity', 'archivingstore_depot', '', null,
                'depot stored ' . json_encode($result['ref'] ?? null) . ' with sha256 ' . ($result['sha256'] ?? '?') .
                ", Moodle's file has {$sha256}");
        }
        return file_handle::create(
            jobid: $jobid,
            archivingstorename: self::STORENAME,
            filename: $file->get_filename(),
            filepath: trim($path, '/'),
            filesize: $size,
            sha256sum: $sha256,
            mimetype: (string) $file->get_mimetype(),
            filekey: self::filekey((string) $ref['driver'], (string) $ref['key'])
        );
    }

    /**
     * Streams the archive from depot into a temporary file, verifies it (depot's X-Depot-Sha256 and
     * Repr-Digest, and the sha256 recorded at store time) and creates the Moodle file from $fileinfo.
     *
     * @param file_handle $handle The handle store() made.
     * @param \stdClass $fileinfo Where the file goes (local_archiving's filestore cache).
     * @return \stored_file The new file; the caller owns it.
     * @throws storage_exception
     */
    public function retrieve(file_handle $handle, \stdClass $fileinfo): \stored_file {
        [$driver, $key] = self::ref_of($handle);
        $target = make_request_directory() . '/download';
        try {
            $got = $this->client()->download($driver, $key, $target, $handle->sha256sum);
            if ($got['size'] !== (int) $handle->filesize) {
                throw new depot_exception('integrity', "received {$got['size']} bytes, stored {$handle->filesize}");
            }
            // As archivingstore_localdir does: file_storage::create_file_from_pathname with the given record.
            $file = get_file_storage()->create_file_from_pathname($fileinfo, $target);
        } catch (depot_exception $e) {
            throw self::storage_failure($e);
        } finally {
            @unlink($target);
        }
        if (!$file) {
            throw new storage_exception('filestorefailed', 'local_archiving');
        }
        return $file;
    }

    /**
     * Deletes the archive in depot. depot refuses while it is under retention ('retention': a clear
     * storage_exception); one already gone ('not_found') is done, unless $strict.
     *
     * @param file_handle $handle The handle store() made.
     * @param bool $strict Whether a missing archive is an error.
     * @throws storage_exception
     */
    public function delete(file_handle $handle, bool $strict = false): void {
        [$driver, $key] = self::ref_of($handle);
        try {
            $this->client()->delete($driver, $key);
        } catch (depot_exception $e) {
            if ($e->depotcode === 'not_found' && !$strict) {
                return;
            }
            throw self::storage_failure($e);
        }
    }

    /**
     * depot's `retainUntil`/`deleteAfter` for a job, so that depot and local_archiving agree: both come from the
     * job's retention setting, counted from the job's creation (local_archiving's own retention time for the file
     * is never earlier, so its delete_expired_artifacts task is never refused).
     *
     * @param array $facts job_facts::for_job().
     * @param string $mode 'both' (retainUntil and deleteAfter), 'deleteafter' (only automatic deletion), 'none'.
     * @return array Task fields.
     */
    public static function retention_fields(array $facts, string $mode): array {
        if ($facts['retention'] === null || $mode === 'none') {
            return [];
        }
        $until = gmdate('Y-m-d\TH:i:s\Z', $facts['timecreated'] + $facts['retention']);
        return $mode === 'deleteafter' ? ['deleteAfter' => $until] : ['retainUntil' => $until, 'deleteAfter' => $until];
    }

    /**
     * The filekey of a depot archive.
     *
     * @param string $driver depot's driver.
     * @param string $key depot's key.
     * @return string JSON {"driver":…,"key":…}
     */
    public static function filekey(string $driver, string $key): string {
        return json_encode(['driver' => $driver, 'key' => $key], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    }

    /**
     * depot's ref recorded in a handle.
     *
     * @param file_handle $handle The handle.
     * @return string[] driver and key.
     * @throws storage_exception When the handle holds no depot ref.
     */
    public static function ref_of(file_handle $handle): array {
        $ref = json_decode((string) $handle->filekey, true);
        if (!is_array($ref) || !is_string($ref['driver'] ?? null) || !is_string($ref['key'] ?? null)) {
            throw new storage_exception('depotnoref', 'archivingstore_depot');
        }
        return [$ref['driver'], $ref['key']];
    }

    /**
     * A depot failure as local_archiving's storage_exception, with a message an admin can act on.
     *
     * @param depot_exception $e The failure.
     * @return storage_exception
     */
    public static function storage_failure(depot_exception $e): storage_exception {
        $code = match ($e->depotcode) {
            'retention' => 'depotretention',
            'integrity' => 'depotintegrity',
            'not_found' => 'depotnotfound',
            'auth' => 'depotauth',
            'unavailable' => 'depotunavailable',
            default => 'depotfailed',
        };
        return new storage_exception($code, 'archivingstore_depot', '', $e->getMessage(), $e->getMessage());
    }

    /**
     * The entry of the configured driver (or depot's default) in GET /v1/drivers; remembers its type for
     * get_storage_tier().
     *
     * @return array|null null when depot cannot be asked or does not list the driver.
     */
    private function driver_entry(): ?array {
        try {
            $drivers = $this->client()->drivers();
        } catch (depot_exception $e) {
            return null;
        }
        $wanted = (string) ($this->config()->driver ?? '');
        foreach ($drivers as $driver) {
            if (is_array($driver) && ($wanted === '' ? !empty($driver['default']) : ($driver['name'] ?? null) === $wanted)) {
                if (isset($driver['type']) && (string) $driver['type'] !== (string) ($this->config()->drivertype ?? '')) {
                    set_config('drivertype', (string) $driver['type'], 'archivingstore_depot');
                }
                return $driver;
            }
        }
        return null;
    }

    /**
     * Copies a Moodle file to a local path through its content file handle, hashing it on the way: neither
     * step holds the file in memory (local_archiving's storage::hash_file reads the same handle).
     *
     * @param \stored_file $file The file.
     * @param string $target Where the copy goes.
     * @return array sha256 (hex) and size.
     * @throws storage_exception
     */
    private function copy_and_hash(\stored_file $file, string $target): array {
        $in = $file->get_content_file_handle();
        $out = fopen($target, 'wb');
        if (!$in || !$out) {
            throw new storage_exception('filestorefailed', 'local_archiving');
        }
        $hash = hash_init('sha256');
        $size = 0;
        while (!feof($in)) {
            $chunk = fread($in, 1048576);
            if ($chunk === false) {
                break;
            }
            hash_update($hash, $chunk);
            $size += strlen($chunk);
            fwrite($out, $chunk);
        }
        fclose($in);
        if (!fclose($out)) {
            throw new storage_exception('filestorefailed', 'local_archiving');
        }
        return [hash_final($hash), $size];
    }

    /**
     * The client, built from the settings on first use.
     *
     * @return depot_client
     */
    private function client(): depot_client {
        if ($this->client === null) {
            $config = $this->config();
            $transport = new moodle_curl_transport(
                (int) ($config->timeout ?? 600),
                (int) ($config->connecttimeout ?? 10),
                !isset($config->verifytls) || (bool) $config->verifytls
            );
            $this->client = new depot_client((string) ($config->url ?? ''), (string) ($config->token ?? ''), $transport,
                (int) ($config->waittimeout ?? 600));
        }
        return $this->client;
    }

    /**
     * The plugin's settings.
     *
     * @return \stdClass
     */
    private function config(): \stdClass {
        return $this->config ??= (object) get_config('archivingstore_depot');
    }
}
