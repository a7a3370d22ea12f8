-- payhook schema for SQL Server.
--
-- The tables keep the names and columns the previous .NET service created (WebhookEvents,
-- WebhookProcessingLogs, PaymentEvents), so this script runs both on an empty database and
-- on one that already holds that service's tables and rows. Every step is guarded: a table
-- or index is created only when it is missing, a column is added only when it is missing,
-- and nothing is dropped or renamed.
--
-- The whole file runs as one batch inside one transaction. XACT_ABORT makes any error roll
-- the transaction back, so the database is either fully migrated or left unchanged.
-- T-SQL compiles a batch before running it, and a statement that names a column added
-- earlier in the same batch fails to compile when the table already exists. Such
-- statements are therefore run through EXEC, which compiles them when they execute.
-- The batch returns no result sets, so an error anywhere in it reaches the caller.
--
-- Times are DATETIME2 holding UTC. payhook writes its own clock's values, cut to whole
-- microseconds.

SET XACT_ABORT ON;

-- The tables exactly as the previous service created them.
IF OBJECT_ID(N'WebhookEvents', N'U') IS NULL
    CREATE TABLE WebhookEvents (
        Id INT PRIMARY KEY IDENTITY(1,1),
        EventId NVARCHAR(255) NOT NULL,
        Provider NVARCHAR(50) NOT NULL,
        EventType NVARCHAR(100) NOT NULL,
        Status NVARCHAR(50) NOT NULL,
        RawPayload NVARCHAR(MAX) NOT NULL,
        ProcessedPayload NVARCHAR(MAX),
        Signature NVARCHAR(1000),
        SourceIp NVARCHAR(45),
        UserAgent NVARCHAR(500),
        ErrorMessage NVARCHAR(2000),
        AttemptCount INT NOT NULL DEFAULT 1,
        MaxAttempts INT NOT NULL DEFAULT 3,
        NextRetryAt DATETIME2,
        CreatedAt DATETIME2 NOT NULL DEFAULT GETUTCDATE(),
        UpdatedAt DATETIME2 NOT NULL DEFAULT GETUTCDATE(),
        ProcessedAt DATETIME2
    );

IF OBJECT_ID(N'WebhookProcessingLogs', N'U') IS NULL
    CREATE TABLE WebhookProcessingLogs (
        Id INT PRIMARY KEY IDENTITY(1,1),
        WebhookEventId INT NOT NULL,
        ProcessingStep NVARCHAR(100) NOT NULL,
        Status NVARCHAR(50) NOT NULL,
        DurationMs BIGINT NOT NULL,
        ErrorMessage NVARCHAR(2000),
        AdditionalData NVARCHAR(4000),
        ProcessedAt DATETIME2 NOT NULL DEFAULT GETUTCDATE(),
        FOREIGN KEY (WebhookEventId) REFERENCES WebhookEvents(Id)
    );

IF OBJECT_ID(N'PaymentEvents', N'U') IS NULL
    CREATE TABLE PaymentEvents (
        Id INT PRIMARY KEY IDENTITY(1,1),
        WebhookEventId INT NOT NULL,
        PaymentId NVARCHAR(255) NOT NULL,
        Provider NVARCHAR(50) NOT NULL,
        EventType NVARCHAR(100) NOT NULL,
        Status NVARCHAR(50) NOT NULL,
        Amount DECIMAL(18,2),
        Currency NVARCHAR(3),
        CustomerId NVARCHAR(255),
        OrderId NVARCHAR(255),
        TransactionId NVARCHAR(255),
        Metadata NVARCHAR(4000),
        CreatedAt DATETIME2 NOT NULL DEFAULT GETUTCDATE(),
        UpdatedAt DATETIME2 NOT NULL DEFAULT GETUTCDATE(),
        FOREIGN KEY (WebhookEventId) REFERENCES WebhookEvents(Id)
    );

IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_WebhookEvents_Provider_EventType')
    CREATE NONCLUSTERED INDEX IX_WebhookEvents_Provider_EventType
        ON WebhookEvents (Provider, EventType);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_WebhookEvents_Status_CreatedAt')
    CREATE NONCLUSTERED INDEX IX_WebhookEvents_Status_CreatedAt
        ON WebhookEvents (Status, CreatedAt);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_PaymentEvents_PaymentId')
    CREATE NONCLUSTERED INDEX IX_PaymentEvents_PaymentId ON PaymentEvents (PaymentId);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_PaymentEvents_Provider_Status')
    CREATE NONCLUSTERED INDEX IX_PaymentEvents_Provider_Status ON PaymentEvents (Provider, Status);

-- Columns payhook adds to WebhookEvents. A NOT NULL column gets a default, which also
-- fills the rows already stored: old rows have no stored headers ('{}') and count as not
-- verified (0), because the previous service kept no record of a verification.
IF COL_LENGTH(N'WebhookEvents', N'Headers') IS NULL
    ALTER TABLE WebhookEvents ADD Headers NVARCHAR(MAX) NOT NULL
        CONSTRAINT DF_WebhookEvents_Headers DEFAULT N'{}';
IF COL_LENGTH(N'WebhookEvents', N'SignatureVerified') IS NULL
    ALTER TABLE WebhookEvents ADD SignatureVerified BIT NOT NULL
        CONSTRAINT DF_WebhookEvents_SignatureVerified DEFAULT 0;
IF COL_LENGTH(N'WebhookEvents', N'SignatureKeyId') IS NULL
    ALTER TABLE WebhookEvents ADD SignatureKeyId NVARCHAR(255) NULL;
IF COL_LENGTH(N'WebhookEvents', N'ProviderCreatedAt') IS NULL
    ALTER TABLE WebhookEvents ADD ProviderCreatedAt DATETIME2 NULL;
IF COL_LENGTH(N'WebhookEvents', N'PublishedAt') IS NULL
    ALTER TABLE WebhookEvents ADD PublishedAt DATETIME2 NULL;
IF COL_LENGTH(N'WebhookEvents', N'LockedUntil') IS NULL
    ALTER TABLE WebhookEvents ADD LockedUntil DATETIME2 NULL;

-- Columns payhook adds to PaymentEvents. AmountMinor and AmountExponent hold the exact
-- amount; Amount stays for existing readers.
IF COL_LENGTH(N'PaymentEvents', N'AmountMinor') IS NULL
    ALTER TABLE PaymentEvents ADD AmountMinor BIGINT NULL;
IF COL_LENGTH(N'PaymentEvents', N'AmountExponent') IS NULL
    ALTER TABLE PaymentEvents ADD AmountExponent INT NULL;
IF COL_LENGTH(N'PaymentEvents', N'StatusRaw') IS NULL
    ALTER TABLE PaymentEvents ADD StatusRaw NVARCHAR(100) NULL;
IF COL_LENGTH(N'PaymentEvents', N'ProviderCreatedAt') IS NULL
    ALTER TABLE PaymentEvents ADD ProviderCreatedAt DATETIME2 NULL;

-- Three-decimal currencies (KWD, BHD, JOD, OMR, TND) do not fit DECIMAL(18,2). The wider
-- type keeps 15 integer digits; an existing amount of 10^15 or more makes this statement
-- fail with an arithmetic overflow, which rolls the whole migration back.
IF EXISTS (
    SELECT 1 FROM sys.columns
    WHERE object_id = OBJECT_ID(N'PaymentEvents') AND name = N'Amount'
      AND (precision <> 19 OR scale <> 4)
)
    ALTER TABLE PaymentEvents ALTER COLUMN Amount DECIMAL(19,4) NULL;

-- Rows written by the previous service carry Amount with two decimals and no exact parts.
-- Fill the parts with exponent 2, which is exactly what DECIMAL(18,2) held. A row whose
-- currency is not three letters keeps NULL parts and is read back without an amount.
EXEC(N'
UPDATE PaymentEvents
SET AmountMinor = CONVERT(BIGINT, Amount * 100), AmountExponent = 2
WHERE Amount IS NOT NULL AND AmountMinor IS NULL AND AmountExponent IS NULL
  AND Currency LIKE N''[A-Za-z][A-Za-z][A-Za-z]''
  AND Amount * 100 = ROUND(Amount * 100, 0)
');

-- Provider event ids are case-sensitive ("evt_1Ab" and "evt_1aB" are different events),
-- but the default collation compares case-insensitively. A binary collation makes the
-- unique index below tell them apart. No index of the previous schema includes EventId;
-- statistics SQL Server built on it would block the change, so they are dropped first and
-- grow again on use. An index an operator added on EventId stops the migration instead.
IF EXISTS (
    SELECT 1 FROM sys.columns
    WHERE object_id = OBJECT_ID(N'WebhookEvents') AND name = N'EventId'
      AND collation_name <> N'Latin1_General_100_BIN2'
)
BEGIN
    DECLARE @dropStatistics NVARCHAR(MAX) = N'';
    SELECT @dropStatistics = @dropStatistics
        + N'DROP STATISTICS WebhookEvents.' + QUOTENAME(s.name) + N'; '
    FROM sys.stats AS s
    JOIN sys.stats_columns AS sc ON sc.object_id = s.object_id AND sc.stats_id = s.stats_id
    JOIN sys.columns AS c ON c.object_id = sc.object_id AND c.column_id = sc.column_id
    WHERE s.object_id = OBJECT_ID(N'WebhookEvents') AND c.name = N'EventId'
      AND (s.auto_created = 1 OR s.user_created = 1);
    EXEC(@dropStatistics);
    ALTER TABLE WebhookEvents
        ALTER COLUMN EventId NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL;
END

-- One row per (Provider, EventId) is what makes a redelivered webhook a duplicate instead
-- of a second payment. The previous service did not enforce it, so an existing database
-- may hold duplicates. They are not removed or hidden behind a filtered index: the
-- migration stops with the message below, and nothing is changed, until an operator has
-- decided which row of each pair to keep. The message names the query that lists them.
EXEC(N'
IF EXISTS (
    SELECT 1 FROM WebhookEvents
    GROUP BY Provider, EventId
    HAVING COUNT(*) > 1
)
    THROW 50001, N''payhook cannot migrate: WebhookEvents holds more than one row for the same (Provider, EventId). List them with: SELECT Provider, EventId, COUNT(*) AS Copies, MIN(Id) AS FirstId, MAX(Id) AS LastId FROM WebhookEvents GROUP BY Provider, EventId HAVING COUNT(*) > 1; keep one row of each (moving or deleting the others together with their WebhookProcessingLogs and PaymentEvents rows), then start payhook again.'', 1;
');

EXEC(N'
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N''UX_WebhookEvents_Provider_EventId'')
    CREATE UNIQUE NONCLUSTERED INDEX UX_WebhookEvents_Provider_EventId
        ON WebhookEvents (Provider, EventId);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N''IX_WebhookEvents_Status_NextRetryAt'')
    CREATE NONCLUSTERED INDEX IX_WebhookEvents_Status_NextRetryAt
        ON WebhookEvents (Status, NextRetryAt);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N''IX_WebhookEvents_CreatedAt'')
    CREATE NONCLUSTERED INDEX IX_WebhookEvents_CreatedAt ON WebhookEvents (CreatedAt);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N''IX_WebhookProcessingLogs_WebhookEventId'')
    CREATE NONCLUSTERED INDEX IX_WebhookProcessingLogs_WebhookEventId
        ON WebhookProcessingLogs (WebhookEventId);
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N''IX_PaymentEvents_WebhookEventId'')
    CREATE NONCLUSTERED INDEX IX_PaymentEvents_WebhookEventId
        ON PaymentEvents (WebhookEventId);
');
