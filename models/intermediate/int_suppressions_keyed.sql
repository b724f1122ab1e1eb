{#-
    Suppression entries ready to match: by profile_id, and by household_key (the normalized address),
    so that "moved away" or "deceased" at an address suppresses it however the CRM spells it.
    is_address_pending: the entry has an address (int_addresses_collected collects it) with no
    validation result yet, so no household key until `directmail addresses validate` or a run.
-#}
with

entries as (

    select * from {{ ref('stg_suppression__entries') }}

),

validated as (

    select * from {{ ref('stg_direct_mail__address_validations') }}

),

keyed as (

    select
        entries.list_name,
        entries.profile_id,
        validated.household_key,
        (
            entries.address_line_1 is not null
            and validated.address_key is null
        ) as is_address_pending,
        entries.added_on

    from entries
    left join validated
        on
            {{ address_key(
                'entries.address_line_1', 'entries.address_line_2', 'entries.postal_code',
                'entries.city', 'entries.region', 'entries.country_code'
            ) }} = validated.address_key

)

select * from keyed
