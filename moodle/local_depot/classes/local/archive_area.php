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

namespace local_depot\local;

/**
 * The archives depot keeps in one file area of a course.
 *
 * Each archive is a file of component local_depot at item 0; its manifest is a second file
 * at item 1 with the same path and name. Both are created in one database transaction, so
 * neither is ever seen without the other. Write-once rests on Moodle's own rule that a path
 * names one file (the unique index on the files table's pathnamehash): file_storage refuses
 * to create a file where one exists, whoever got there first, and nothing here ever deletes
 * or replaces a file in order to file another.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class archive_area {
    /** @var string The component that owns the files. */
    public const COMPONENT = 'local_depot';
    /** @var int Item id of the archives. */
    public const ITEM_ARCHIVE = 0;
    /** @var int Item id of the manifests: one per archive, at the archive's path and name. */
    public const ITEM_MANIFEST = 1;
    /** @var int Longest file path and file name the files table holds. */
    public const MAX_LENGTH = 255;

    /** @var \file_storage */
    private $fs;
    /** @var \moodle_database */
    private $db;
    /** @var int Context of the course. */
    private $contextid;
    /** @var string File area. */
    private $filearea;

    /**
     * Opens the area; no capability is checked here (the external functions check it).
     *
     * @param \file_storage $fs Moodle's file storage.
     * @param \moodle_database $db Moodle's database.
     * @param int $contextid The course's context id.
     * @param string $filearea The file area.
     */
    public function __construct(\file_storage $fs, \moodle_database $db, int $contextid, string $filearea) {
        $this->fs = $fs;
        $this->db = $db;
        $this->contextid = $contextid;
        $this->filearea = $filearea;
    }

    /**
     * Files the one file of a draft area as an archive, with its manifest, unless the path is taken.
     *
     * The draft area is emptied afterwards whatever the outcome, once it was found: a retry
     * uploads again. A taken path is not an error: the answer is 'exists' with the manifest
     * found there ('' when the file there has none: another writer's), and depot decides
     * whether that is its own archive (a retry) or a conflict.
     *
     * @param int $usercontextid Context of the user who uploaded the draft.
     * @param int $draftitemid The draft area's item id, as webservice/upload.php answered.
     * @param string $filepath '/YYYY/MM/DD/<taskId>/'.
     * @param string $filename The archive's file name.
     * @param string $sha256 The sha256 depot computed while sending (lower-case hex).
     * @param string $manifest The manifest (JSON).
     * @return array ['status' => 'created'|'exists', 'manifest' => string, 'file' => \stored_file]
     */
    public function store_draft(int $usercontextid, int $draftitemid, string $filepath, string $filename, string $sha256,
            string $manifest): array {
        self::require_location($filepath, $filename);
        if (!preg_match('/^[0-9a-f]{64}$/', $sha256)) {
            throw new \invalid_parameter_exception('sha256 must be 64 lower-case hexadecimal digits');
        }
        $drafts = $this->fs->get_area_files($usercontextid, 'user', 'draft', $draftitemid, 'id', false);
        if (count($drafts) !== 1) {
            throw new \moodle_exception('draftnotfound', 'local_depot', '', null, count($drafts) . ' files in the draft area');
        }
        $draft = reset($drafts);
        try {
            $described = manifest::require_describes($manifest, $filepath, $filename, $sha256);
            // The bytes Moodle holds must be the ones depot hashed while sending (Moodle's own contenthash is sha1).
            if ((int) $draft->get_filesize() !== $described->size || self::sha256_of($draft) !== $sha256) {
                throw new \moodle_exception('checksummismatch', 'local_depot', '', null,
                    'received ' . $draft->get_filesize() . ' bytes, the manifest says ' . $described->size);
            }
            return $this->file_once($draft, $filepath, $filename, $manifest);
        } finally {
            $this->fs->delete_area_files($usercontextid, 'user', 'draft', $draftitemid);
        }
    }

    /**
     * Creates archive and manifest in one transaction; a taken path makes it 'exists'.
     *
     * @param \stored_file $draft The uploaded file.
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @param string $manifest The manifest (JSON).
     * @return array As store_draft().
     */
    private function file_once(\stored_file $draft, string $filepath, string $filename, string $manifest): array {
        try {
            $archive = $this->create_both($draft, $filepath, $filename, $manifest);
            return ['status' => 'created', 'manifest' => $manifest, 'file' => $archive];
        } catch (\stored_file_creation_exception $e) {
            // Moodle refused to create a file: the insert hit the unique path, or failed otherwise.
            // Only a file now at the archive's path makes it 'exists'; anything else is the error it is.
            $existing = $this->archive_file($filepath, $filename);
            if (!$existing) {
                throw $e;
            }
            return ['status' => 'exists', 'manifest' => $this->manifest_of($filepath, $filename), 'file' => $existing];
        }
    }

    /**
     * Archive and manifest, both or neither.
     *
     * @param \stored_file $draft The uploaded file.
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @param string $manifest The manifest (JSON).
     * @return \stored_file The archive.
     */
    private function create_both(\stored_file $draft, string $filepath, string $filename, string $manifest): \stored_file {
        $transaction = $this->db->start_delegated_transaction();
        try {
            $archive = $this->fs->create_file_from_storedfile($this->record(self::ITEM_ARCHIVE, $filepath, $filename), $draft);
            $this->fs->create_file_from_string($this->record(self::ITEM_MANIFEST, $filepath, $filename), $manifest);
            $transaction->allow_commit();
            return $archive;
        } catch (\Throwable $e) {
            // Rolls back, then throws $e again.
            $transaction->rollback($e);
            throw $e;
        }
    }

    /**
     * An archive and its manifest, or null when no archive is at the path.
     *
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @return array|null ['file' => \stored_file, 'manifest' => string ('' when there is none)]
     */
    public function get(string $filepath, string $filename): ?array {
        self::require_location($filepath, $filename);
        $archive = $this->archive_file($filepath, $filename);
        if (!$archive) {
            return null;
        }
        return ['file' => $archive, 'manifest' => $this->manifest_of($filepath, $filename)];
    }

    /**
     * Deletes an archive and its manifest, both or neither.
     *
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @return bool False when there was no archive.
     */
    public function delete(string $filepath, string $filename): bool {
        self::require_location($filepath, $filename);
        $transaction = $this->db->start_delegated_transaction();
        try {
            $archive = $this->archive_file($filepath, $filename);
            if ($archive) {
                // Archive first: were the manifest to outlive it, it would be invisible.
                $archive->delete();
                $manifest = $this->fs->get_file($this->contextid, self::COMPONENT, $this->filearea, self::ITEM_MANIFEST,
                    $filepath, $filename);
                if ($manifest) {
                    $manifest->delete();
                }
            }
            $transaction->allow_commit();
            return (bool) $archive;
        } catch (\Throwable $e) {
            $transaction->rollback($e);
            throw $e;
        }
    }

    /**
     * One page of archives whose path starts with $pathprefix, in the order they were filed.
     *
     * The file API lists whole areas only; a keyset page (files after the id $after) stays
     * correct while archives are filed and deleted between pages.
     *
     * @param string $pathprefix Start of the file path, e.g. '/2026/11/'.
     * @param int $after The id the previous page ended with (0: the first page).
     * @param int $limit Archives per page.
     * @return array ['entries' => [['file' => \stored_file, 'manifest' => string]], 'next' => int (0: last page)]
     */
    public function list_page(string $pathprefix, int $after, int $limit): array {
        if ($pathprefix === '' || $pathprefix[0] !== '/' || clean_param($pathprefix, PARAM_PATH) !== $pathprefix) {
            throw new \invalid_parameter_exception('pathprefix must be a clean path starting with /');
        }
        $select = 'contextid = :contextid AND component = :component AND filearea = :filearea AND itemid = :itemid'
            . ' AND filename <> :dot AND id > :after AND ' . $this->db->sql_like('filepath', ':prefix', true, true);
        $params = [
            'contextid' => $this->contextid,
            'component' => self::COMPONENT,
            'filearea' => $this->filearea,
            'itemid' => self::ITEM_ARCHIVE,
            'dot' => '.',
            'after' => $after,
            'prefix' => $this->db->sql_like_escape($pathprefix) . '%',
        ];
        $records = $this->db->get_records_select('files', $select, $params, 'id', '*', 0, $limit);
        $entries = [];
        $last = 0;
        foreach ($records as $record) {
            $file = $this->fs->get_file_instance($record);
            $entries[] = ['file' => $file, 'manifest' => $this->manifest_of($file->get_filepath(), $file->get_filename())];
            $last = (int) $record->id;
        }
        return ['entries' => $entries, 'next' => count($records) === $limit ? $last : 0];
    }

    /**
     * Bytes the area's files take (archives and manifests).
     *
     * @return int Bytes.
     */
    public function used_bytes(): int {
        $select = 'contextid = :contextid AND component = :component AND filearea = :filearea';
        $params = ['contextid' => $this->contextid, 'component' => self::COMPONENT, 'filearea' => $this->filearea];
        return (int) $this->db->get_field_select('files', 'COALESCE(SUM(filesize), 0)', $select, $params);
    }

    /**
     * The archive at a path, or false.
     *
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @return \stored_file|false
     */
    private function archive_file(string $filepath, string $filename) {
        $file = $this->fs->get_file($this->contextid, self::COMPONENT, $this->filearea, self::ITEM_ARCHIVE, $filepath, $filename);
        return $file && !$file->is_directory() ? $file : false;
    }

    /**
     * The manifest beside an archive, or '' when there is none.
     *
     * @param string $filepath The archive's path.
     * @param string $filename The archive's name.
     * @return string The manifest.
     */
    private function manifest_of(string $filepath, string $filename): string {
        $file = $this->fs->get_file($this->contextid, self::COMPONENT, $this->filearea, self::ITEM_MANIFEST, $filepath, $filename);
        return $file ? $file->get_content() : '';
    }

    /**
     * The record of a new file in the area.
     *
     * @param int $itemid ITEM_ARCHIVE or ITEM_MANIFEST.
     * @param string $filepath The path.
     * @param string $filename The name.
     * @return array The file record.
     */
    private function record(int $itemid, string $filepath, string $filename): array {
        return [
            'contextid' => $this->contextid,
            'component' => self::COMPONENT,
            'filearea' => $this->filearea,
            'itemid' => $itemid,
            'filepath' => $filepath,
            'filename' => $filename,
        ];
    }

    /**
     * A path and name Moodle keeps exactly as given; anything else would file the archive elsewhere.
     *
     * @param string $filepath '/YYYY/MM/DD/<taskId>/'.
     * @param string $filename The file name.
     */
    public static function require_location(string $filepath, string $filename): void {
        if (!preg_match('~^/[0-9]{4}/[0-9]{2}/[0-9]{2}/[A-Za-z0-9._-]{1,128}/$~', $filepath)
                || clean_param($filepath, PARAM_PATH) !== $filepath || \core_text::strlen($filepath) > self::MAX_LENGTH) {
            throw new \invalid_parameter_exception('filepath must be /YYYY/MM/DD/<taskId>/');
        }
        if ($filename === '' || clean_param($filename, PARAM_FILE) !== $filename
                || \core_text::strlen($filename) > self::MAX_LENGTH) {
            throw new \invalid_parameter_exception('filename must be a clean file name of at most 255 characters');
        }
    }

    /**
     * The sha256 of a stored file's bytes, read as a stream.
     *
     * @param \stored_file $file The file.
     * @return string Lower-case hex.
     */
    private static function sha256_of(\stored_file $file): string {
        $handle = $file->get_content_file_handle();
        try {
            $context = hash_init('sha256');
            hash_update_stream($context, $handle);
            return hash_final($context);
        } finally {
            fclose($handle);
        }
    }
}
