-- The collected addresses still pending: no validation result yet (a new warehouse, or new or changed
-- CRM addresses). A warning, not a failure: a campaign run validates them by itself before its extract,
-- and a profile whose address is pending is never mailed (invalid_address, address:not_validated). dbt
-- prints warn_if with the count, so the warning names the command that validates them. Runs never select
-- this test (its two parents are built by different builds of a run).
{{ config(
    severity='warn',
    warn_if='!= 0 /* addresses pending validation: run directmail addresses validate */'
) }}

with

collected as (

    select * from {{ ref('int_addresses_collected') }}

),

validated as (

    select * from {{ ref('stg_direct_mail__address_validations') }}

)

select collected.address_key
from collected
left join validated
    on collected.address_key = validated.address_key
where validated.address_key is null
